// One upstream backend: its keep-alive pool, live in-flight count, and health (active and passive).
import type { Pool } from './undici.js';
import { poolTrackingConnects } from './opening-connections.js';
import { upstreamPoolOptions, type UpstreamTransport } from '../proxy/upstream-tls.js';
import { BoundedPool } from './bounded-pool.js';
import { UPSTREAM_IDLE_MS, watchConnection } from './connection-watch.js';
import type { Peer, PeerGroup } from '../pipeline/upstream.js';
import type { Candidate } from './strategy.js';

/** Pool settings shared by every backend, taken from the config at start-up or reload. */
export interface PoolOptions {
  readonly connections: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** TLS and HTTP/2 of the group (proxy/upstream-tls.ts). */
  readonly transport: UpstreamTransport;
  /** Identity of the TLS/HTTP/2 settings: a change gives the backend a new pool on reload. */
  readonly transportKey: string;
  /** Requests that may wait for a free connection (`load_balancing.queue_limit`); more get 503 at once. */
  readonly queueLimit: number;
  /** Longest wait for a free connection before 503 (`load_balancing.queue_timeout`). */
  readonly queueTimeoutMs: number;
}

/** Counters of one upstream (address and port), kept across the pools a reload gives it. */
interface UpstreamLoad {
  inflight: number;
  requests: number;
  failures: number;
}

/** Health as the dashboard and metrics show it. */
export type HealthState = 'healthy' | 'unhealthy' | 'cooling_down';

export class Backend implements Candidate, Peer {
  name: string;
  readonly address: string;
  readonly port: number;
  weight: number;
  readonly label: string;
  readonly origin: string;
  readonly dispatcher: BoundedPool;
  /** The service this backend belongs to (it counts in-flight requests and hears failures). */
  readonly group: PeerGroup;
  /** Identity for pool reuse across reloads: address, port and pool options. */
  readonly key: string;
  /** TLS and HTTP/2 settings of its pool, reused by the health checker's probes. */
  readonly transport: UpstreamTransport;
  /** Identity of those settings (PoolOptions.transportKey). */
  readonly transportKey: string;
  /** The upstream's counters, shared with the backend it replaced at the same address and port (inheritLoad). */
  #load: UpstreamLoad = { inflight: 0, requests: 0, failures: 0 };
  /** Result of the active checks (true until a check says otherwise). */
  activeHealthy = true;
  /** Consecutive active-check results in the current direction, compared with the thresholds. */
  streak = 0;
  #coolingDown = false;
  #cooldownTimer: NodeJS.Timeout | undefined;
  /** When the passive cooldown ends (performance.now() time), while #coolingDown. */
  #cooldownEndsAt = 0;
  /** When its latest failure happened (performance.now() time), while #coolingDown. */
  #cooldownSince = 0;
  /** The pool options, kept for the HTTP/1.1 pool an HTTP/2 group's first WebSocket makes (upgradeDispatcher). */
  readonly #options: PoolOptions;
  /** That pool, once made. */
  #upgradePool: BoundedPool | undefined = undefined;
  /** close() was called: no pool is made any more. */
  #closed = false;

  constructor(name: string, address: string, port: number, weight: number, options: PoolOptions, group: PeerGroup) {
    this.name = name;
    this.group = group;
    this.key = Backend.keyOf(address, port, options);
    this.address = address;
    this.port = port;
    this.weight = weight;
    const host = address.includes(':') ? `[${address}]` : address;
    this.label = `${host}:${port}`;
    this.transport = options.transport;
    this.transportKey = options.transportKey;
    this.origin = `${options.transport.scheme}://${this.label}`;
    this.#options = options;
    this.dispatcher = boundedPool(this.origin, options, address);
  }

  /**
   * Where a WebSocket handshake to this upstream is sent: the pool itself, unless the group speaks HTTP/2. Over HTTP/2
   * a WebSocket needs extended CONNECT (RFC 8441), which few servers offer and whose stream is no socket a tunnel
   * (upgrade.ts) can join, so a WebSocket to an HTTP/2 group goes to the same upstream over HTTP/1.1, as Traefik and
   * nginx send it (a server that speaks h2 alone fails that handshake: 502, as any failed one): on a pool of
   * its own, with the same TLS settings (CA, SNI, client certificate) but ALPN `http/1.1` alone, or over cleartext a
   * plain HTTP/1.1 Upgrade instead of h2c. Made at the first handshake (most HTTP/2 groups carry gRPC and never
   * see one); closed with the backend (close()). A tunnel leaves that pool at its 101 and stays counted in flight on
   * this backend (Service.acquire/release), as any tunnel. Once the backend is closed (a reload retired it, the
   * gateway stops), the closed pool itself answers, as it does any request: no pool is made that nothing would close.
   */
  get upgradeDispatcher(): BoundedPool {
    if (!this.transport.http2 || this.#closed) return this.dispatcher;
    // It shares the upstream's connections_per_upstream and queue_limit with the group's pool (bounded-pool.ts).
    this.#upgradePool ??= boundedPool(this.origin, { ...this.#options, transport: { ...this.transport, http2: false } }, this.address, this.dispatcher);
    return this.#upgradePool;
  }

  /** Closes the pool, and the WebSocket one if any (a reload retired this backend, or the gateway stops). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([this.dispatcher.close(), this.#upgradePool?.close()]);
  }

  /** Destroys both pools: their connections, those still being opened included (the end of a stop). */
  async destroy(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([this.dispatcher.destroy(), this.#upgradePool?.destroy()]);
  }

  /** The service's upstream_response (ms), which its pool gives undici as headersTimeout (forward.ts reads it too). */
  get responseTimeoutMs(): number {
    return this.#options.headersTimeoutMs;
  }

  /** Requests running on this upstream, on this pool or on the one a reload replaced (least_conn reads it). */
  get inflight(): number {
    return this.#load.inflight;
  }

  /** Requests sent to this upstream since it was first configured. */
  get requests(): number {
    return this.#load.requests;
  }

  /** Passive-check failures of this upstream since it was first configured. */
  get failures(): number {
    return this.#load.failures;
  }

  /** One request picked this upstream (Service.acquire). */
  started(): void {
    this.#load.inflight++;
    this.#load.requests++;
  }

  /** That request ended (Service.release), on whichever pool it was sent. */
  ended(): void {
    this.#load.inflight--;
  }

  /** That request was never sent after all (Service.withdraw): neither in flight nor counted. */
  withdrawn(): void {
    this.#load.inflight--;
    this.#load.requests--;
  }

  /**
   * Shares the counters of the backend this one replaces at the same address and port (a reload that changed the
   * pool options, whatever the transport): the requests still running on the old pool load the same upstream, so
   * least_conn must count them, and they count down here as they end there.
   */
  inheritLoad(from: Backend): void {
    this.#load = from.#load;
    // And its connections_per_upstream and queue: the running requests of both pools count against one limit. What
    // waits moves to this pool, unless this one speaks HTTP/2 where the old one did not: a WebSocket handshake
    // queued on an HTTP/1.1 pool cannot go over HTTP/2 (this backend's upgradeDispatcher is where it would go now).
    this.dispatcher.adoptSlotsOf(from.dispatcher, from.transport.http2 || !this.transport.http2);
  }

  /** May this backend get traffic now? Read by the strategies on every pick. */
  get available(): boolean {
    return this.activeHealthy && !this.#coolingDown;
  }

  get health(): HealthState {
    if (!this.activeHealthy) return 'unhealthy';
    return this.#coolingDown ? 'cooling_down' : 'healthy';
  }

  /**
   * Passive check: a connection failure or timeout takes the backend out of rotation for `cooldownMs`. Returns true
   * when this call changed its state (so the caller logs the transition once).
   */
  coolDown(cooldownMs: number): boolean {
    this.#load.failures++;
    if (this.#coolingDown) {
      // Not a longer cooldown, but a later failure: a probe sent before it no longer ends the cooldown (clearCooldown).
      this.#cooldownSince = performance.now();
      return false;
    }
    this.#startCooldown(cooldownMs, performance.now());
    return true;
  }

  #startCooldown(ms: number, since: number): void {
    this.#coolingDown = true;
    this.#cooldownSince = since;
    this.#cooldownEndsAt = performance.now() + ms;
    this.#cooldownTimer = setTimeout(() => {
      this.#coolingDown = false;
      this.#cooldownTimer = undefined;
    }, ms);
    this.#cooldownTimer.unref();
  }

  /**
   * Takes over the health of the backend this one replaces at the same address and port (a reload that changed the
   * pool options): the active checks' verdict and streak, and what is left of a passive cooldown. Health belongs to
   * the upstream, not to the pool: a new pool must not put an upstream known to be down back in rotation until the
   * next check round. Only when the TLS and HTTP/2 settings are the same (Service.apply): a verdict reached over
   * another transport says nothing of this one.
   */
  inheritHealth(from: Backend): void {
    this.activeHealthy = from.activeHealthy;
    this.streak = from.streak;
    if (from.#coolingDown) this.#startCooldown(Math.max(0, from.#cooldownEndsAt - performance.now()), from.#cooldownSince);
  }

  /**
   * Ends a passive cooldown early: an active check sent at `probeSentAt` (performance.now() time) succeeded. Only a
   * check sent after the failure speaks for the upstream since: a slow health path's probe sent before it (its
   * answer computed before the upstream broke, or by a health endpoint that stays up while the service does not)
   * put the upstream back in rotation the moment it answered, and the requests the cooldown was to spare failed.
   */
  clearCooldown(probeSentAt: number): void {
    if (!this.#coolingDown || probeSentAt < this.#cooldownSince) return;
    if (this.#cooldownTimer) clearTimeout(this.#cooldownTimer);
    this.#cooldownTimer = undefined;
    this.#coolingDown = false;
  }

  /** The reuse key of an upstream: a backend is kept across a reload only when its pool would be the same. */
  static keyOf(address: string, port: number, options: PoolOptions): string {
    const host = address.includes(':') ? `[${address}]` : address;
    return `${host}:${port}|${options.connections}|${options.connectTimeoutMs}|${options.headersTimeoutMs}|${options.bodyTimeoutMs}|${options.queueLimit}|${options.queueTimeoutMs}|${options.transportKey}`;
  }
}

/** A keep-alive pool to `origin` behind its bounded queue (bounded-pool.ts), sharing the limits of `shareWith`. */
function boundedPool(origin: string, options: PoolOptions, address: string, shareWith?: BoundedPool): BoundedPool {
  const limits = { connections: options.connections, queueLimit: options.queueLimit, queueTimeoutMs: options.queueTimeoutMs };
  return new BoundedPool(createPool(origin, options, address), limits, shareWith);
}

/**
 * A keep-alive pool to `origin`. Keep-alive idle time stays under the usual 5 s server default to avoid races; the
 * races that remain (a backend closing sooner) are told apart by the connection watch, which each new connection gets
 * (and which closes idle HTTP/2 sessions, as undici does not).
 */
export function createPool(origin: string, options: PoolOptions, address: string): Pool {
  const pool = poolTrackingConnects(origin, upstreamPoolOptions(options.transport, address, {
    connections: options.connections,
    pipelining: 1,
    // Never reached: set so undici counts the requests written on each socket, which the connection watch reads to
    // tell a reused keep-alive connection from a fresh one (connection-watch.ts).
    maxRequestsPerClient: Number.MAX_SAFE_INTEGER,
    keepAliveTimeout: UPSTREAM_IDLE_MS,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    connect: { timeout: options.connectTimeoutMs },
  }));
  pool.on('connect', watchConnection);
  return pool;
}
