// The services of the running config, by name. A reload keeps unchanged services (and their pools), updates
// changed ones in place, adds new ones and retires those that left: their pools close once the requests that
// started before the reload are over.
import type { Logger } from 'pino';
import type { ResolvedService } from '../config/services.js';
import type { Backend, PoolOptions } from './backend.js';
import { poolOptionsOf, Service } from './service.js';

export class ServiceRegistry {
  #services = new Map<string, Service>();
  readonly #logger: Logger;
  #started = false;
  /** Pools a reload removed, waiting for the requests that may still use them (retire()); closed by close() too. */
  readonly #retired = new Set<() => Promise<unknown>>();
  /** Retired pools whose graceful close has begun and not ended: destroy() can still reach them. */
  readonly #closingPools = new Set<Backend>();

  constructor(services: ReadonlyMap<string, ResolvedService>, logger: Logger) {
    this.#logger = logger;
    for (const [name, settings] of services) this.#services.set(name, new Service(settings, logger));
  }

  get(name: string): Service | undefined {
    return this.#services.get(name);
  }

  /** Every service, in config order. */
  get all(): readonly Service[] {
    return [...this.#services.values()];
  }

  /** Every backend of every service (metrics, dashboard). */
  get backends(): readonly Backend[] {
    return this.all.flatMap((s) => s.backends);
  }

  /** Starts the active health checks of every service. */
  start(): void {
    this.#started = true;
    for (const s of this.#services.values()) s.health.start();
  }

  /**
   * Prepares the services of a new config: reads what can fail (each service's upstream TLS files: ConfigError) and
   * changes nothing. The returned function applies them; it retires what left (the services and backends the new
   * config removed) through the function it returns in turn, to be called once the new route table is in place.
   */
  prepare(services: ReadonlyMap<string, ResolvedService>): () => (requestsDone: Promise<void>, boundMs: number) => void {
    const options = new Map([...services].map(([name, settings]) => [name, poolOptionsOf(settings)]));
    return () => this.#apply(services, options);
  }

  #apply(services: ReadonlyMap<string, ResolvedService>, options: ReadonlyMap<string, PoolOptions>): (requestsDone: Promise<void>, boundMs: number) => void {
    const next = new Map<string, Service>();
    const leftBackends: Backend[] = [];
    for (const [name, settings] of services) {
      const kept = this.#services.get(name);
      if (kept) {
        leftBackends.push(...kept.apply(settings, options.get(name)));
        next.set(name, kept);
      } else {
        const created = new Service(settings, this.#logger, options.get(name));
        if (this.#started) created.health.start();
        next.set(name, created);
      }
    }
    const leftServices = [...this.#services.entries()].filter(([name]) => !next.has(name)).map(([, s]) => s);
    this.#services = next;
    return (requestsDone, boundMs) => this.#retire(leftServices, leftBackends, requestsDone, boundMs);
  }

  /**
   * The health checks of the services that left stop at once. Their pools, and those of the backends that left, stay
   * open until `requestsDone` (every request started before the reload is over: one that matched its route or picked
   * its upstream before the swap, and waited in an async hook since, is still sent there), or `boundMs` at most
   * (server.timeouts.shutdown_drain); then they close, finishing the requests they run.
   */
  #retire(services: readonly Service[], backends: readonly Backend[], requestsDone: Promise<void>, boundMs: number): void {
    if (services.length === 0 && backends.length === 0) return;
    for (const s of services) void s.health.close().catch(() => undefined);
    this.#closeWhenDone([...services.flatMap((s) => s.backends), ...backends], requestsDone, boundMs);
  }

  /**
   * Closes `pools` once `requestsDone` settles or `boundMs` has passed. A function of its own, holding the pools in
   * a variable it empties once they are closed: a request older than the reload that outlives the bound (a stream
   * open for days) keeps `requestsDone` pending, and with it this closure; it used to keep every retired service and
   * backend reachable too, some 13 KB a reload for as long as that request ran.
   */
  #closeWhenDone(pools: readonly Backend[], requestsDone: Promise<void>, boundMs: number): void {
    let held: readonly Backend[] | undefined = pools;
    let timer: NodeJS.Timeout | undefined;
    const close = async (): Promise<void> => {
      if (!this.#retired.delete(close)) return;
      clearTimeout(timer);
      const closing = held ?? [];
      held = undefined;
      for (const b of closing) this.#closingPools.add(b);
      await Promise.allSettled(closing.map((b) => b.close().finally(() => this.#closingPools.delete(b))));
    };
    this.#retired.add(close);
    timer = setTimeout(() => void close(), boundMs);
    timer.unref();
    void requestsDone.then(close);
  }

  /** At least one backend of any service can take traffic (readiness). */
  hasHealthy(): boolean {
    return this.all.some((s) => s.hasHealthy());
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.all.map((s) => s.close()), ...[...this.#retired].map((close) => close())]);
  }

  /**
   * Destroys every pool, retired ones included: a graceful close waits for connections still being opened (undici's
   * close), which a stop must not, once its requests are over or cut (see server.ts).
   */
  async destroy(): Promise<void> {
    for (const close of [...this.#retired]) void close(); // their pools join #closingPools at once
    await Promise.allSettled([...this.all.map((s) => s.destroy()), ...[...this.#closingPools].map((b) => b.destroy())]);
  }
}
