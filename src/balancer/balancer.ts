// The balancer: the current backend set and strategy, as the pipeline's UpstreamSelector. Swapped whole on reload.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Peer, UpstreamSelector } from '../pipeline/upstream.js';
import { Backend, type PoolOptions } from './backend.js';
import { createStrategy, type Strategy } from './strategy.js';
import { EVENTS } from '../observability/events.js';

/** Pool options from the config. */
export function poolOptionsFrom(config: Config): PoolOptions {
  const t = config.server.timeouts;
  return {
    connections: config.load_balancing.connections_per_upstream,
    connectTimeoutMs: t.upstream_connect,
    headersTimeoutMs: t.upstream_response,
    bodyTimeoutMs: t.upstream_body,
  };
}

export class Balancer implements UpstreamSelector {
  #backends: readonly Backend[];
  #strategy: Strategy;
  #cooldownMs: number;
  #panicOffset = 0;
  readonly #logger: Logger;

  constructor(config: Config, logger: Logger) {
    this.#logger = logger;
    this.#backends = [];
    this.#strategy = createStrategy(config.load_balancing.strategy, 0);
    this.#cooldownMs = config.load_balancing.health_check.passive_cooldown;
    this.apply(config);
  }

  /** The current backends, in config order. */
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /**
   * Installs the upstreams, strategy and cooldown of `config`. A backend whose address:port is already known keeps
   * its pool (and so its keep-alive connections), health and counters; the others get new pools. Returns the
   * backends that are no longer in the config, for the caller to close once their requests finish.
   */
  apply(config: Config): Backend[] {
    const byKey = new Map(this.#backends.map((b) => [b.key, b]));
    const options = poolOptionsFrom(config);
    const next = config.load_balancing.upstreams.map((u) => {
      const host = u.address.includes(':') ? `[${u.address}]` : u.address;
      const old = byKey.get(`${host}:${u.port}`);
      if (!old) return new Backend(u.name, u.address, u.port, u.weight, options);
      // Same upstream: keep the object, so its pool, health and the in-flight count of running requests carry over.
      byKey.delete(old.key);
      old.name = u.name;
      old.weight = u.weight;
      return old;
    });
    this.#backends = next;
    this.#strategy = createStrategy(config.load_balancing.strategy, next.length);
    this.#cooldownMs = config.load_balancing.health_check.passive_cooldown;
    return [...byKey.values()];
  }

  select(_ctx: RequestContext, exclude: Peer | undefined): Peer | undefined {
    const index = this.#strategy.pick(this.#backends, exclude as Backend | undefined);
    return index === -1 ? this.#panicPick(exclude) : this.#backends[index];
  }

  /**
   * Every backend is out of rotation: if some are only cooling down after a passive failure (the active checks
   * still call them healthy), try them anyway rather than answer 502 for a whole cooldown, as nginx does when all
   * servers of a group are marked failed. One slow request to a single backend must not take the service down.
   */
  #panicPick(exclude: Peer | undefined): Backend | undefined {
    const backends = this.#backends;
    const n = backends.length;
    for (let k = 0; k < n; k++) {
      const b = backends[(this.#panicOffset + k) % n]!;
      if (b.activeHealthy && b !== exclude) {
        this.#panicOffset = (this.#panicOffset + k + 1) % n;
        return b;
      }
    }
    return undefined;
  }

  reportFailure(peer: Peer, error: GatewayError): void {
    const backend = peer as Backend;
    if (backend.coolDown(this.#cooldownMs)) {
      this.#logger.warn(
        { event: EVENTS.upstreamDown, upstream: backend.label, reason: error.code, cooldown_ms: this.#cooldownMs },
        EVENTS.upstreamDown,
      );
    }
  }

  /** At least one backend can take traffic (readiness). */
  hasHealthy(): boolean {
    return this.#backends.some((b) => b.available);
  }
}
