// The services of the running config, by name. A reload keeps unchanged services (and their pools), updates
// changed ones in place, adds new ones and closes those that left once their requests have finished.
import type { Logger } from 'pino';
import type { ResolvedService } from '../config/services.js';
import type { Backend } from './backend.js';
import { Service } from './service.js';

export class ServiceRegistry {
  #services = new Map<string, Service>();
  readonly #logger: Logger;
  #started = false;

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
   * Applies the services of a new config. Nothing is closed here: the returned callback closes what left (pools of
   * removed services and backends), to be called once the new route table is in place.
   */
  apply(services: ReadonlyMap<string, ResolvedService>): () => void {
    const next = new Map<string, Service>();
    const leftBackends: Backend[] = [];
    for (const [name, settings] of services) {
      const kept = this.#services.get(name);
      if (kept) {
        leftBackends.push(...kept.apply(settings));
        next.set(name, kept);
      } else {
        const created = new Service(settings, this.#logger);
        if (this.#started) created.health.start();
        next.set(name, created);
      }
    }
    const leftServices = [...this.#services.entries()].filter(([name]) => !next.has(name)).map(([, s]) => s);
    this.#services = next;
    return () => {
      // Pools finish their running requests, then close (undici's close waits for them).
      for (const b of leftBackends) void b.dispatcher.close().catch(() => undefined);
      for (const s of leftServices) void s.close();
    };
  }

  /** At least one backend of any service can take traffic (readiness). */
  hasHealthy(): boolean {
    return this.all.some((s) => s.hasHealthy());
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all.map((s) => s.close()));
  }
}
