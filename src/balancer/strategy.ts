// The Strategy interface shared by every balancing algorithm, and the lookup from the config name.
import type { StrategyName } from '../config/schema.js';
import { RoundRobin } from './round-robin.js';
import { WeightedRandom } from './random.js';
import { LeastConnections } from './least-conn.js';

/** What a strategy may look at: a weight, the live in-flight count, and whether the backend may get traffic now. */
export interface Candidate {
  readonly weight: number;
  readonly inflight: number;
  readonly available: boolean;
}

/**
 * Picks one backend per request. Strategies are pure apart from their own small state (round-robin counters); the
 * candidate list keeps the same order for a strategy's whole life (a reload builds a new strategy).
 */
export interface Strategy {
  /** Index of the chosen candidate, skipping unavailable ones and `exclude`; -1 when none can be chosen. */
  pick(candidates: readonly Candidate[], exclude: Candidate | undefined): number;
}

/** A new strategy instance for `name`; `random` may be injected for deterministic tests. */
export function createStrategy(name: StrategyName, size: number, random: () => number = Math.random): Strategy {
  switch (name) {
    case 'round_robin':
      return new RoundRobin(size);
    case 'random':
      return new WeightedRandom(random);
    case 'least_conn':
      return new LeastConnections(size);
  }
}
