// The host's limits running out under the gateway (descriptors: EMFILE, ENFILE; kernel buffers: ENOBUFS, ENOMEM): one warning when an episode begins and one line when it is over, never a line per failed
// connect or probe. A flood that used up the descriptor table fails every request and every health probe until it
// goes: a line for each would bury the log (and the disk it is on) when it is least wanted.
import { closeSync, openSync } from 'node:fs';
import type { Logger } from 'pino';
import { EVENTS } from './events.js';

/**
 * The codes of a failure of this host, not of the peer it was meant to reach. Not EADDRNOTAVAIL: connect() says it
 * for a destination this host has no source address for (an IPv6 upstream where IPv6 is disabled) as well as for a
 * destination whose local ports ran out; either way that destination cannot be reached from here, and taken for a
 * shortage of the gateway's, such an upstream stayed in rotation for ever, every request a 503.
 */
export const LOCAL_RESOURCE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** No failure for this long ends an episode (a flood's descriptors are freed over a few seconds). */
export const QUIET_MS = 5_000;

interface Episode {
  readonly logger: Logger;
  readonly where: string;
  readonly startedAt: number;
  lastAt: number;
  failures: number;
}

/**
 * Open episodes, one per code. Per process, not per gateway: the descriptor table and the local ports belong to the
 * process, and two gateways embedded in one process meet the same exhaustion (the first to meet it logs it).
 */
class ResourceEpisodes {
  readonly #open = new Map<string, Episode>();
  #timer: NodeJS.Timeout | undefined;

  /** A failure with `code` at `where` (upstream_connect, health_probe...): the episode's warning if it is the first. */
  report(logger: Logger, code: string, where: string): void {
    const now = performance.now();
    const episode = this.#open.get(code);
    if (episode !== undefined) {
      episode.failures++;
      episode.lastAt = now;
      return;
    }
    this.#open.set(code, { logger, where, startedAt: now, lastAt: now, failures: 1 });
    logger.warn({ event: EVENTS.localResourcesExhausted, code, where }, EVENTS.localResourcesExhausted);
    this.#timer ??= setInterval(() => this.#closeQuiet(), QUIET_MS / 5).unref();
  }

  #closeQuiet(): void {
    const now = performance.now();
    for (const [code, e] of this.#open) {
      // A descriptor table still full is the same episode, failures seen or not: a flood of idle connections
      // refused at accept() leaves no failure of ours to see (the event loop closes them unseen).
      if (TABLE_CODES.has(code) && descriptorTableFull()) e.lastAt = now;
      if (now - e.lastAt < QUIET_MS) continue;
      this.#open.delete(code);
      const fields = { event: EVENTS.localResourcesRecovered, code, failures: e.failures, lasted_ms: Math.round(e.lastAt - e.startedAt) };
      e.logger.info(fields, EVENTS.localResourcesRecovered);
    }
    if (this.#open.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** The codes of a full descriptor table: the process's own (EMFILE) or the system's (ENFILE). */
const TABLE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);

/** Whether no descriptor can be opened now: one opened and closed at once, five times a second during an episode. */
function descriptorTableFull(): boolean {
  try {
    closeSync(openSync('/dev/null', 'r'));
    return false;
  } catch (err) {
    return TABLE_CODES.has(String((err as { code?: unknown }).code));
  }
}

export const localResources = new ResourceEpisodes();

/**
 * The local-resource code of `err`, or undefined: a system error with one of LOCAL_RESOURCE_CODES, or an
 * AggregateError (node's autoSelectFamily: one attempt per address) whose attempts all failed so.
 */
export function localResourceCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && LOCAL_RESOURCE_CODES.has(code)) return code;
  if (depth > 0 || !(err instanceof AggregateError) || !Array.isArray(err.errors) || err.errors.length === 0) return undefined;
  const codes = err.errors.map((e: unknown) => localResourceCode(e, depth + 1));
  return codes.every((c) => c !== undefined) ? codes[0] : undefined;
}

/** Reports `err` to its episode if it is a local-resource failure; whether it was one. */
export function reportLocalFailure(logger: Logger, err: unknown, where: string): boolean {
  const code = localResourceCode(err);
  if (code === undefined) return false;
  localResources.report(logger, code, where);
  return true;
}
