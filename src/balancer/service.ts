// One service: its backends and strategy as the pipeline's UpstreamSelector and PeerGroup. It owns acquire,
// release and failure reports (in-flight counts and passive health), so the driver never touches balancer state.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ResolvedService } from '../config/services.js';
import type { StrategyName } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Peer, PeerGroup, UpstreamSelector } from '../pipeline/upstream.js';
import { Backend, type PoolOptions } from './backend.js';
import { createStrategy, type Candidate, type Strategy } from './strategy.js';
import { markTried, triedPeers } from './tried.js';
import { EVENTS } from '../observability/events.js';
import { HealthChecker } from './health.js';
import { loadUpstreamTransport } from '../proxy/upstream-tls.js';

/**
 * What a TLS file held, for the pool's reuse key: certificates are rotated by rewriting the same paths (an ACME
 * hook, cert-manager, a mounted secret), and a key of the paths alone kept the pool built from the old files across
 * the reload meant to apply them (the rotated CA never trusted, the renewed client certificate never presented).
 */
function fileDigest(content: Buffer | undefined): string | null {
  return content === undefined ? null : createHash('sha256').update(content).digest('base64');
}

/** Pool options of a service; backends whose options changed get a new pool on reload. */
export function poolOptionsOf(s: ResolvedService): PoolOptions {
  const transport = loadUpstreamTransport(s, s.keyPath);
  return {
    connections: s.connectionsPerUpstream,
    connectTimeoutMs: s.connectTimeoutMs,
    headersTimeoutMs: s.responseTimeoutMs,
    bodyTimeoutMs: s.bodyTimeoutMs,
    transport,
    transportKey: JSON.stringify([s.tls, s.http2, fileDigest(transport.ca), fileDigest(transport.cert), fileDigest(transport.key)]),
    queueLimit: s.queueLimit,
    queueTimeoutMs: s.queueTimeoutMs,
  };
}

/** A tried backend as the strategies see it during a retry's pick. */
const UNAVAILABLE: Candidate = Object.freeze({ weight: 1, inflight: 0, available: false });

/** The address:port of every peer a request was sent to (and of the one that just failed). */
function triedLabels(tried: ReadonlySet<Peer> | undefined, exclude: Peer | undefined): Set<string> {
  const labels = new Set<string>();
  if (tried !== undefined) for (const p of tried) labels.add(p.label);
  if (exclude !== undefined) labels.add(exclude.label);
  return labels;
}

export class Service implements UpstreamSelector, PeerGroup {
  readonly name: string;
  #backends: readonly Backend[] = [];
  #strategy: Strategy;
  /** The strategy's name and the weights it was built for, in order: a reload that changes neither keeps it. */
  #strategyName: StrategyName | undefined;
  #cooldownMs: number;
  #retries: number;
  #panicOffset = 0;
  /**
   * Backends a reload removed while requests still ran on them, by label: an upstream re-added before those end
   * shares their counts (the requests load it), as a backend given a new pool does. Pruned once they reach 0.
   */
  #departed = new Map<string, Backend>();
  readonly #logger: Logger;
  readonly health: HealthChecker;

  /** `options`: the service's pool options when the caller has read them already (a reload reads them first). */
  constructor(settings: ResolvedService, logger: Logger, options: PoolOptions = poolOptionsOf(settings)) {
    this.name = settings.name;
    this.#logger = logger;
    this.#strategy = createStrategy(settings.strategy, 0);
    this.#cooldownMs = settings.healthCheck.passive_cooldown;
    this.#retries = settings.retries;
    this.health = new HealthChecker(settings.healthCheck, () => this.#backends, logger);
    this.apply(settings, options);
  }

  get retries(): number {
    return this.#retries;
  }

  /** The current backends, in config order. */
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /**
   * Installs the upstreams, strategy, retries and health settings. A backend whose address:port and pool options
   * are unchanged keeps its pool (and so its keep-alive connections), health and counters; the others get new
   * pools, and one at an address:port already known, over the same TLS and HTTP/2 settings, keeps that upstream's health. Returns the backends that left, for the caller to close once their requests finish.
   */
  apply(settings: ResolvedService, options: PoolOptions = poolOptionsOf(settings)): Backend[] {
    const before = this.#backends.map((b) => [b, b.weight] as const);
    const byKey = new Map(this.#backends.map((b) => [b.key, b]));
    const byLabel = new Map(this.#backends.map((b) => [b.label, b]));
    const next = settings.upstreams.map((u) => {
      const old = byKey.get(Backend.keyOf(u.address, u.port, options));
      if (!old) {
        const created = new Backend(u.name, u.address, u.port, u.weight, options, this);
        // Same upstream, new pool options: a new pool, but the health the checks found is still the upstream's,
        // unless the transport changed. The operator who turns TLS on for an upstream that only speaks TLS (its
        // cleartext checks failed) wants it served at once, not after the next round; and a verdict of "up" over
        // cleartext says nothing of a TLS handshake: the new pool starts as any new upstream does.
        const previous = byLabel.get(created.label);
        const loadFrom = previous ?? this.#departed.get(created.label);
        if (loadFrom !== undefined) created.inheritLoad(loadFrom);
        if (previous !== undefined && previous.transportKey === created.transportKey) created.inheritHealth(previous);
        return created;
      }
      // Same upstream: keep the object, so its pool, health and the in-flight count of running requests carry over.
      byKey.delete(old.key);
      old.name = u.name;
      old.weight = u.weight;
      return old;
    });
    this.#backends = next;
    const left = [...byKey.values()];
    const current = new Set(next.map((b) => b.label));
    for (const [label, b] of this.#departed) if (b.inflight <= 0 || current.has(label)) this.#departed.delete(label);
    for (const b of left) if (b.inflight > 0 && !current.has(b.label)) this.#departed.set(b.label, b);
    // A reload that leaves this service's upstreams, their order and weights and its strategy as they were keeps the
    // strategy's state: every reload used to restart round robin at the first upstream, so a config reloaded every few
    // seconds sent that upstream more than its share, and smooth weighted round robin lost its spread. Upstreams are
    // compared by address:port, not by pool: a reload that changes only a pool setting (queue_limit, a timeout, a CA
    // file rewritten in place) gives every upstream a new pool, and used to restart the rotation all the same.
    const unchanged =
      settings.strategy === this.#strategyName &&
      before.length === next.length &&
      before.every(([b, weight], i) => next[i]!.label === b.label && next[i]!.weight === weight);
    if (!unchanged) this.#strategy = createStrategy(settings.strategy, next.length);
    this.#strategyName = settings.strategy;
    this.#cooldownMs = settings.healthCheck.passive_cooldown;
    this.#retries = settings.retries;
    this.health.update(settings.healthCheck);
    return left;
  }

  /**
   * A peer for one attempt. A retry (`exclude`: the peer that just failed) never goes to a peer the request was
   * already sent to: they are recorded on the context from its first retry on (tried.ts), and left out of the
   * strategy's pick and of the panic pick alike.
   */
  acquire(ctx: RequestContext | undefined, exclude: Peer | undefined): Backend | undefined {
    return this.#acquire(ctx, exclude, true);
  }

  /**
   * A split's retry on this service: an upstream in rotation that `ctx` has not been sent to yet (nor `exclude`, the
   * peer that just failed), or undefined. No panic pick: the split asks its other services for one in rotation first.
   */
  acquireInRotation(ctx: RequestContext, exclude?: Peer): Backend | undefined {
    return this.#acquire(ctx, exclude, false);
  }

  #acquire(ctx: RequestContext | undefined, exclude: Peer | undefined, panic: boolean): Backend | undefined {
    if (ctx !== undefined && exclude !== undefined) markTried(ctx, exclude);
    const tried = ctx === undefined ? undefined : triedPeers(ctx);
    let index: number;
    if (tried === undefined || tried.size === 0) index = this.#strategy.pick(this.#backends, exclude as Backend | undefined);
    else {
      // Rare (retries only): the tried backends stand in the list, at their indexes, as unavailable. By address:port:
      // a peer tried on a pool a reload has since replaced is the same upstream as its successor here.
      const labels = triedLabels(tried, exclude);
      const view = this.#backends.map((b): Candidate => (labels.has(b.label) ? UNAVAILABLE : b));
      index = this.#strategy.pick(view, undefined);
    }
    const backend = index !== -1 ? this.#backends[index] : panic ? this.#panicPick(exclude, tried) : undefined;
    if (backend !== undefined) {
      backend.started();
      if (ctx !== undefined && tried !== undefined) markTried(ctx, backend);
    }
    return backend;
  }

  release(peer: Peer): void {
    (peer as Backend).ended();
  }

  withdraw(peer: Peer): void {
    (peer as Backend).withdrawn();
  }

  /**
   * Every backend is out of rotation: if some are only cooling down after a passive failure (the active checks
   * still call them healthy), try them anyway rather than answer 502 for a whole cooldown, as nginx does when all
   * servers of a group are marked failed. One slow request to a single backend must not take the service down.
   */
  #panicPick(exclude: Peer | undefined, tried: ReadonlySet<Peer> | undefined): Backend | undefined {
    const backends = this.#backends;
    const n = backends.length;
    const labels = triedLabels(tried, exclude);
    for (let k = 0; k < n; k++) {
      const b = backends[(this.#panicOffset + k) % n]!;
      if (b.activeHealthy && !labels.has(b.label)) {
        this.#panicOffset = (this.#panicOffset + k + 1) % n;
        return b;
      }
    }
    return undefined;
  }

  reportFailure(peer: Peer, error: GatewayError): void {
    // A failure on a pool a reload has since replaced is the upstream's: its successor at the same address:port
    // (over the same transport, as its health was carried over) leaves rotation, not only the retired object.
    const failed = peer as Backend;
    const backend = this.#backends.includes(failed)
      ? failed
      : (this.#backends.find((b) => b.label === failed.label && b.transportKey === failed.transportKey) ?? failed);
    if (backend.coolDown(this.#cooldownMs)) {
      // upstream_service, as in the access log: `service` is every line's base field (the process, logger.ts).
      this.#logger.warn(
        { event: EVENTS.upstreamDown, upstream_service: this.name, upstream: backend.label, reason: error.code, cooldown_ms: this.#cooldownMs },
        EVENTS.upstreamDown,
      );
    }
  }

  /** At least one backend can take traffic (readiness, and splits skip a service without one). */
  hasHealthy(): boolean {
    return this.#backends.some((b) => b.available);
  }

  /** A split's candidate: a service with no healthy upstream is skipped while another has one. */
  get available(): boolean {
    return this.hasHealthy();
  }

  /** Stops health checks and closes every pool (shutdown, or the service left the config). */
  async close(): Promise<void> {
    await Promise.allSettled([this.health.close(), ...this.#backends.map((b) => b.close())]);
  }

  /** Stops health checks and destroys every pool (the end of a stop whose close() did not settle). */
  async destroy(): Promise<void> {
    await Promise.allSettled([this.health.close(), ...this.#backends.map((b) => b.destroy())]);
  }
}
