// server.max_connections against the process's descriptor limit (RLIMIT_NOFILE), as nginx weighs worker_connections
// against it: a bound the process cannot reach is no bound. Past the limit, accept() fails with EMFILE, which the
// event loop answers by accepting and closing the connection unseen, and connects to upstreams fail alike.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { EVENTS } from './observability/events.js';
import { localResources } from './observability/resource-episodes.js';

/**
 * Descriptors the process holds besides its connections: stdio, the event loop's own, log files, the user store,
 * Redis and PostgreSQL connections, health probes, worker IPC. 26 for a plain gateway, measured; room for the rest.
 */
export const BASELINE_DESCRIPTORS = 64;

/**
 * The soft RLIMIT_NOFILE of this process (node raises it to the hard limit at start), from /proc/self/limits;
 * undefined where there is none (not Linux) or it says "unlimited".
 */
export function descriptorLimit(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/**
 * Descriptors `maxConnections` proxied connections may take at once: each client's and the upstream connection its
 * request is forwarded on, then the process's own.
 */
export function descriptorsNeeded(maxConnections: number): number {
  return 2 * maxConnections + BASELINE_DESCRIPTORS;
}

/** Warns, at start and at each reload, when server.max_connections asks for more descriptors than the process may open. */
export function warnDescriptorLimit(maxConnections: number, logger: Logger, limit = descriptorLimit()): void {
  if (limit === undefined) return;
  const needed = descriptorsNeeded(maxConnections);
  if (needed <= limit) return;
  logger.warn(
    {
      event: EVENTS.descriptorLimitLow,
      max_connections: maxConnections,
      descriptors_needed: needed,
      rlimit_nofile: limit,
      hint: 'raise the limit (LimitNOFILE=, ulimit -n, --ulimit nofile=) or lower server.max_connections',
    },
    EVENTS.descriptorLimitLow,
  );
}

/** What the 'connection' listener needs of a server. */
interface Accepting {
  on(event: 'connection', listener: (socket: unknown) => void): unknown;
}

/** How long a limit read is trusted: prlimit --pid changes a running process's limit. */
const LIMIT_READ_MS = 1_000;

/**
 * Reports the accept that took the last descriptor below the limit as the start of an EMFILE episode. Past it, accept()
 * fails and the event loop (libuv's reserve-descriptor trick) accepts and closes each further connection without a
 * word to node: clients were reset for the whole flood and the log said nothing. Descriptors are handed out lowest
 * first, so an accepted socket numbered limit - 1 means every one below it is taken. One number read per connection;
 * the limit read again at most once a second, and whenever the one held says last. Read once only, a limit raised
 * live (the remedy Descriptor Limit Low names) made every accept past the old one a false exhaustion, and a limit
 * lowered was never seen.
 */
export function watchLastDescriptor(server: Accepting, logger: Logger, read: () => number | undefined = descriptorLimit): void {
  const first = read();
  if (first === undefined) return;
  let limit = first;
  let readAt = performance.now();
  server.on('connection', (socket: unknown) => {
    const fd = (socket as { _handle?: { fd?: unknown } | null })._handle?.fd;
    if (typeof fd !== 'number') return;
    const now = performance.now();
    if (fd >= limit - 1 || now - readAt >= LIMIT_READ_MS) {
      limit = read() ?? limit;
      readAt = now;
    }
    if (fd >= limit - 1) localResources.report(logger, 'EMFILE', 'accept');
  });
}
