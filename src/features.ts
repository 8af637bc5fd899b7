// Wires the optional features (auth, rate limit, metrics, admin) into phase lists; part of the composition root.
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Phase } from './pipeline/phase.js';
import type { Balancer } from './balancer/balancer.js';
import type { UserStore } from './store/user-store.js';

/** The features' contribution to the pipeline, plus their lifecycle. */
export interface Features {
  /** Request filters of proxied routes, in order (authenticate, then rate limit). */
  readonly proxyPhases: readonly Phase[];
  /** Request filters that run before the auth routes (their stricter rate limit). */
  readonly authPhases: readonly Phase[];
  /** Answers /auth/* and the JWKS; undefined when auth is off (those paths are then proxied). */
  readonly authRoutes: Phase | undefined;
  /** Phases that only observe (metrics). */
  readonly observers: readonly Phase[];
  /** Starts the admin listener; resolves to its port, or undefined when disabled. */
  startAdmin(): Promise<number | undefined>;
  /** Applies the reloadable settings of a new config (rate limits). */
  reconfigure(config: Config): void;
  close(): Promise<void>;
}

export interface FeatureDeps {
  readonly logger: Logger;
  readonly dataDir: string;
  readonly balancer: Balancer;
  readonly adminEnabled: boolean;
}

/** Opens the user store the config names: PostgreSQL for a postgres:// URL, else SQLite in the data dir. */
export async function openUserStore(_config: Config, _dataDir: string): Promise<UserStore> {
  throw new Error('user store not wired yet');
}

/** Opens the stores the config asks for and builds the features' phases. */
export async function openFeatures(_config: Config, _deps: FeatureDeps): Promise<Features> {
  return {
    proxyPhases: [],
    authPhases: [],
    authRoutes: undefined,
    observers: [],
    startAdmin: async () => undefined,
    reconfigure: () => undefined,
    close: async () => undefined,
  };
}
