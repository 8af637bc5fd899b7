// Active health checks: a timed HTTP GET to every backend; state flips only after N results in a row.
import { isIP } from 'node:net';
import { request, type Pool } from './undici.js';
import { endOpeningConnections, poolTrackingConnects } from './opening-connections.js';
import { tlsFailureReason, upstreamPoolOptions } from '../proxy/upstream-tls.js';
import { describeCause } from '../errors.js';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/schema.js';
import { EVENTS } from '../observability/events.js';
import { reportLocalFailure } from '../observability/resource-episodes.js';
import { authorityProblem } from '../pipeline/host-check.js';
import type { Backend } from './backend.js';

type HealthSettings = ServiceConfig['health_check'];

/** An upstream as the probes know it: its origin and transport (its probe pool's key). */
function probeKey(backend: Backend): string {
  return `${backend.origin}|${backend.transportKey}`;
}

/**
 * The probe's Host: `health_check.host`, else the service's `tls.servername` (the name its certificate carries, so
 * the name a virtual-hosted upstream serves the service under), else none given: undici sends address:port.
 * tls.servername is not checked as a Host by the config (it is a TLS name): an IPv6 literal there is bracketed, as a
 * Host must write it ("::1" is not an authority), and one that still is not a valid host falls back to address:port.
 */
function probeHost(configured: string, backend: Backend): { host?: string } {
  if (configured !== '') return { host: configured };
  const servername = backend.transport.servername;
  if (servername === undefined) return {};
  const host = isIP(servername) === 6 ? new URL(`http://[${servername}]/`).host : servername; // canonical, bracketed
  return authorityProblem(host) === undefined ? { host } : {};
}

/**
 * Probes on their own small connection pools (not the proxy's), so a backend saturated with proxied requests is not
 * judged by a probe stuck in its queue. Runs until stop(); timers are unref'd and never keep the process alive.
 */
export class HealthChecker {
  /**
   * One pool of one connection per upstream origin and transport, speaking to an HTTPS or HTTP/2 upstream the way the
   * proxy does (same CA, SNI, client certificate, h2c). A probe that fails drops its pool, so the next one starts on
   * a new connection: an HTTP/2 session whose connection died silently (a NAT or load balancer that dropped it, no
   * RST) was kept by undici, which sends every later stream on it, so every probe timed out and the upstream stayed
   * out of rotation while new connections to it worked (an HTTP/1 probe's socket is destroyed with it, HTTP/2's was
   * not). Pools of upstreams no longer configured are dropped at the next round.
   */
  readonly #pools = new Map<string, Pool>();
  readonly #logger: Logger;
  #settings: HealthSettings;
  #backends: () => readonly Backend[];
  #timer: NodeJS.Timeout | undefined;
  /** When the scheduled round is due (performance.now() time). */
  #dueAt = 0;
  /**
   * Upstreams whose probe is still running, by origin and transport (a pool-changing reload gives an upstream a new
   * Backend object, still the same upstream): a round skips them, so probes of one upstream never overlap.
   */
  readonly #probing = new Set<string>();
  #closed = false;

  /** `backends` is read at every round, so a reload's new set is probed from the next round on. */
  constructor(settings: HealthSettings, backends: () => readonly Backend[], logger: Logger) {
    this.#settings = settings;
    this.#backends = backends;
    this.#logger = logger;
  }

  /** Starts the rounds (the first one right away) when checks are enabled. */
  start(): void {
    if (!this.#settings.enabled || this.#timer) return;
    this.#schedule(0);
  }

  /**
   * New settings from a reload. A longer interval applies from the next round; a shorter one moves a round already
   * scheduled further away than it to one new interval from now (an hourly check shortened to 5 s waits 5 s, not
   * up to an hour).
   */
  update(settings: HealthSettings): void {
    const wasEnabled = this.#settings.enabled;
    this.#settings = settings;
    if (!settings.enabled) {
      this.stop();
      if (wasEnabled) this.#forgetVerdicts();
    } else if (!wasEnabled) this.start();
    else if (this.#timer && this.#dueAt - performance.now() > settings.interval) {
      clearTimeout(this.#timer);
      this.#schedule(settings.interval);
    }
  }

  /**
   * Checks turned off: no probe will ever call a backend healthy again, so one they had marked down would stay out
   * of rotation for good (every request 502 while it answers). Without checks a backend is healthy until a passive
   * failure says otherwise, as at a start with checks off.
   */
  #forgetVerdicts(): void {
    for (const backend of this.#backends()) {
      backend.activeHealthy = true;
      backend.streak = 0;
    }
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Stops the rounds and cuts the probes still running (a stop, or a reload that removed the service). Closing the
   * agent instead waited for them: a health path that hangs held the gateway's stop for up to health_check.timeout.
   * A probe cut here gives no verdict.
   */
  async close(): Promise<void> {
    this.stop();
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(
      pools.map((pool) => {
        endOpeningConnections(pool); // a probe's connect to a silent upstream would outlive the destroy
        return pool.destroy();
      }),
    );
  }

  /** The probe pool of `backend`: by origin and transport, so a reload's new TLS or HTTP/2 settings get a new one. */
  #poolOf(backend: Backend): { key: string; pool: Pool } {
    const key = probeKey(backend);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = poolTrackingConnects(backend.origin, upstreamPoolOptions(backend.transport, backend.address, { connections: 1, keepAliveTimeout: 1_000, pipelining: 1 }));
      this.#pools.set(key, pool);
    }
    return { key, pool };
  }

  /** Drops the pool under `key` if it is still `pool` (its connection is cut: a probe on it fails, unrecorded or not). */
  #dropPool(key: string, pool: Pool): void {
    if (this.#pools.get(key) !== pool) return;
    this.#pools.delete(key);
    void pool.destroy().catch(() => undefined);
  }

  /**
   * One round: a probe of every backend whose previous probe has ended; resolves when those have answered or timed
   * out. Each backend is on its own: a round that waited for all of them held every upstream of the service to the
   * slowest (a health path that hangs for `timeout` made the others' period interval + timeout, so an upstream that
   * went down kept its traffic, and one that came back stayed out, that much longer).
   */
  async runOnce(): Promise<void> {
    const backends = this.#backends();
    const wanted = new Set(backends.map(probeKey));
    for (const [key, pool] of this.#pools) if (!wanted.has(key)) this.#dropPool(key, pool);
    const started: Promise<void>[] = [];
    for (const backend of backends) {
      const key = probeKey(backend);
      if (this.#probing.has(key)) continue; // its probe is still waiting: no second one beside it
      this.#probing.add(key);
      started.push(this.#probe(backend).finally(() => this.#probing.delete(key)));
    }
    await Promise.all(started);
  }

  /** Rounds every interval, whatever the probes take (runOnce never starts a second probe of a backend). */
  #schedule(delayMs: number): void {
    this.#dueAt = performance.now() + delayMs;
    this.#timer = setTimeout(() => {
      void this.runOnce();
      if (this.#settings.enabled) this.#schedule(this.#settings.interval);
    }, delayMs);
    this.#timer.unref();
  }

  async #probe(backend: Backend): Promise<void> {
    const s = this.#settings;
    let ok = false;
    /** Why this probe failed, for the Unhealthy line it may tip: an operator must not have to guess (TLS, a 503...). */
    let failure: ProbeFailure | undefined;
    const sentAt = performance.now();
    const { key, pool } = this.#poolOf(backend);
    const deadline = probeDeadline(s.timeout);
    try {
      const response = await request(`${backend.origin}${s.path}`, {
        dispatcher: pool,
        method: 'GET',
        // The probe's one bound is its deadline (head and whole body); undici's own timers would decide it too
        // early after a stall of the gateway's event loop, as a plain timer does (probeDeadline).
        headersTimeout: 0,
        bodyTimeout: 0,
        signal: deadline.signal,
        headers: { 'user-agent': 'portcullis-health-check', ...probeHost(s.host, backend) },
      });
      // Read to the end, and only a complete answer counts: dump() resolves once the body is closed, even when the
      // probe's own timeout cut it, so a backend whose head arrived but whose body stalled or trickled past the
      // timeout was called healthy. Iterating rejects on that abort (and on the body timeout).
      for await (const _chunk of response.body) {
        // discarded: only the status and the body's end matter
      }
      ok = response.statusCode < 500; // the server answered: a 404 on "/" still means it is up
      if (!ok) failure = { reason: `status ${response.statusCode}` };
    } catch (err) {
      deadline.clear();
      this.#dropPool(key, pool); // no answer: the next probe on a new connection, not this one's
      // The gateway's own descriptors or ports ran out: the probe says nothing of the upstream, and a verdict would
      // call every upstream unhealthy at once, emptying the rotation for as long as the spike lasts and after it.
      if (reportLocalFailure(this.#logger, err, 'health_probe')) return;
      ok = false;
      failure = probeFailure(err);
    }
    deadline.clear();
    this.#record(backend, ok, sentAt, failure);
  }

  /**
   * The backend a probe's verdict belongs to now. A reload during the round may have given the upstream a new pool
   * (a new Backend at the same address:port, which took over the health known then): the verdict goes to it, as
   * the next round's would, rather than to the retired object, where it was lost for one interval. Undefined when
   * the upstream left, or now speaks another transport (a verdict over the old one says nothing of it).
   */
  #successorOf(probed: Backend): Backend | undefined {
    const current = this.#backends();
    if (current.includes(probed)) return probed;
    return current.find((b) => b.label === probed.label && b.transportKey === probed.transportKey);
  }

  #record(probed: Backend, ok: boolean, sentAt: number, failure?: ProbeFailure): void {
    const s = this.#settings;
    // A probe of a round that was running when a reload turned the checks off, or cut by close(): no verdict.
    if (!s.enabled || this.#closed) return;
    const backend = this.#successorOf(probed);
    if (backend === undefined) return;
    if (ok === backend.activeHealthy) {
      backend.streak = 0;
      if (ok) backend.clearCooldown(sentAt);
      return;
    }
    backend.streak++;
    const threshold = ok ? s.healthy_threshold : s.unhealthy_threshold;
    if (backend.streak < threshold) return;
    backend.streak = 0;
    backend.activeHealthy = ok;
    // The service too: one upstream may serve several services, each with its own checks and verdict.
    const fields = { upstream_service: backend.group.name, upstream: backend.label };
    if (ok) {
      backend.clearCooldown(sentAt);
      this.#logger.info({ event: EVENTS.upstreamUp, ...fields }, EVENTS.upstreamUp);
    } else {
      this.#logger.warn({ event: EVENTS.upstreamUnhealthy, ...fields, ...failure }, EVENTS.upstreamUnhealthy);
    }
  }
}

/**
 * A probe's deadline, `timeoutMs` after now, that does not count the gateway's own pauses against the upstream.
 * After a stall of the gateway's event loop (a GC pause, a plugin's synchronous work, a loaded host), overdue timers
 * run before the poll phase reads the sockets, so a plain timer (AbortSignal.timeout, undici's headersTimeout) failed
 * a probe whose answer lay unread in its socket, or whose connection the stall had kept from completing: with
 * unhealthy_threshold 1 a healthy upstream went out of rotation for the gateway's own pause (a browser test saw its
 * live upstream shown unhealthy). So a deadline whose timer fires late by more than STALLED_TIMER_MS (the loop was
 * not running) gives the probe one more `timeoutMs` from then; and the abort itself waits for the turn's check phase
 * (setImmediate), after the sockets were read, as the Redis store decides its command timeouts.
 */
function probeDeadline(timeoutMs: number): { readonly signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  let late: NodeJS.Immediate | undefined;
  let extended = false;
  let due = performance.now() + timeoutMs;
  const fire = (): void => {
    const now = performance.now();
    if (!extended && now - due > STALLED_TIMER_MS) {
      extended = true;
      due = now + timeoutMs;
      timer = setTimeout(fire, timeoutMs);
      timer.unref();
      return;
    }
    late = setImmediate(() => controller.abort(new DOMException('health check timed out', 'TimeoutError')));
  };
  let timer = setTimeout(fire, timeoutMs);
  timer.unref();
  return {
    signal: controller.signal,
    clear(): void {
      clearTimeout(timer);
      if (late !== undefined) clearImmediate(late);
    },
  };
}

/** How late a probe's deadline timer may fire before the lateness is taken for a stall of the gateway's event loop. */
const STALLED_TIMER_MS = 100;

/** Why a probe failed, as the `Upstream Unhealthy` line says it: `reason` in words, `cause` the error's class and code. */
interface ProbeFailure {
  readonly reason: string;
  readonly cause?: string | undefined;
}

/**
 * A probe's error in the words `Upstream TLS Failed` uses for a request's (an upstream certificate the gateway does
 * not trust: before, the checks marked it down in silence and every request got no_healthy_upstream, the TLS cause
 * never named again), else what kind of failure it was.
 */
function probeFailure(err: unknown): ProbeFailure {
  const tls = tlsFailureReason(err);
  const cause = describeCause(err);
  if (tls !== undefined) return { reason: `TLS: ${tls}`, cause };
  const code = (err as { code?: unknown } | null)?.code;
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { reason: 'timed out', cause };
  if (code === 'ECONNREFUSED') return { reason: 'connection refused', cause };
  return { reason: 'no answer', cause };
}
