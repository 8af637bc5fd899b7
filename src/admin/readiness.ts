// Readiness: named async checks (user store, Redis, upstreams), each bounded by a timeout, run for GET /ready.
import { GatewayError } from '../errors.js';

/** One dependency the gateway needs to serve. `check` resolves when it answers and rejects (or hangs) when not. */
export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void>;
}

/** Result of one readiness round: "ok" or "down" per check, in the order given. */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, 'ok' | 'down'>;
}

/** How long one check may take before it counts as down. */
export const READINESS_TIMEOUT_MS = 1_000;

/**
 * The run of each check under way. GET /ready needs no token (probes carry none), so anyone who reaches the admin
 * port can send it as often as they like: a request that comes while a check is running shares that run instead of
 * starting its own, so a flood of probes costs the store and Redis one query at a time, never one per request (they
 * are the connections the proxy listener's logins, API keys, revocations and rate limits wait on). A run is shared
 * until it settles, not only for one probe's timeout: a store slower than that (PostgreSQL answers within its
 * statement timeout, 5 s by default) otherwise got one more ping a second from a flood, each holding a pool connection.
 */
const running = new WeakMap<ReadinessCheck, Promise<'ok' | 'down'>>();

/**
 * How long a run that never settles is shared before the next probe starts another. The gateway's checks all settle
 * (the store's and Redis's own timeouts bound them); this only keeps one that hangs for good from answering "down"
 * for ever after.
 */
const MAX_SHARED_MS = 30_000;

/**
 * Runs every check at once; each gets `timeoutMs` (default 1 s) from this request's arrival, so a hung store answers
 * "down" instead of stalling the probe. A check already running for another request is joined, not run again. Never
 * rejects. Ready when every check is "ok" (an empty list is ready).
 */
export async function runReadiness(checks: readonly ReadinessCheck[], timeoutMs = READINESS_TIMEOUT_MS): Promise<ReadinessReport> {
  const results = await Promise.all(checks.map((c) => withTimeout(shared(c), timeoutMs)));
  const report: Record<string, 'ok' | 'down'> = {};
  checks.forEach((c, i) => (report[c.name] = results[i]!));
  return { ready: results.every((r) => r === 'ok'), checks: report };
}

/** The check's run under way, or a new one, forgotten as soon as it has its answer (nothing is cached). */
function shared(check: ReadinessCheck): Promise<'ok' | 'down'> {
  const under = running.get(check);
  if (under !== undefined) return under;
  // A check that throws synchronously is down too, hence the async wrapper; the run never rejects.
  const run = (async () => {
    await check.check();
    return 'ok' as const;
  })().catch(() => 'down' as const);
  const forget = (): void => {
    if (running.get(check) === run) running.delete(check);
  };
  const stale = setTimeout(forget, MAX_SHARED_MS);
  stale.unref();
  running.set(check, run);
  void run.then(() => {
    clearTimeout(stale);
    forget();
  });
  return run;
}

/** The run's answer, or "down" once `timeoutMs` has passed. */
async function withTimeout(run: Promise<'ok' | 'down'>, timeoutMs: number): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'down'>((resolve) => {
    timer = setTimeout(() => resolve('down'), timeoutMs);
  });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The upstream check: ready while at least one upstream can take traffic (healthy and not cooling down). */
export function upstreamsCheck(source: { hasHealthy(): boolean }): ReadinessCheck {
  return {
    name: 'upstreams',
    async check() {
      if (!source.hasHealthy()) throw new GatewayError('NO_HEALTHY_UPSTREAM');
    },
  };
}

/** Not ready once a stop has begun, so load balancers stop sending before the port closes. */
export function acceptingCheck(isDraining: () => boolean): ReadinessCheck {
  return {
    name: 'accepting',
    async check() {
      if (isDraining()) throw new GatewayError('SHUTTING_DOWN');
    },
  };
}

/** Wraps a ping (e.g. `() => store.ping()`, `() => redis.ping()`) as a named check; the ping's result is ignored. */
export function pingCheck(name: string, ping: () => Promise<unknown>): ReadinessCheck {
  return {
    name,
    async check() {
      await ping();
    },
  };
}
