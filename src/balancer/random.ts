// Weighted random: each eligible backend is chosen with probability weight / sum of eligible weights.
import type { Candidate, Strategy } from './strategy.js';

export class WeightedRandom implements Strategy {
  readonly #random: () => number;

  /** `random` returns a number in [0, 1); Math.random in production, a seeded generator in tests. */
  constructor(random: () => number) {
    this.#random = random;
  }

  pick(candidates: readonly Candidate[], exclude: Candidate | undefined): number {
    let total = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.available && c !== exclude) total += c.weight;
    }
    if (total === 0) return -1;
    let point = this.#random() * total;
    let last = -1;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (!c.available || c === exclude) continue;
      last = i;
      point -= c.weight;
      if (point < 0) return i;
    }
    return last; // floating-point remainder: the last eligible backend
  }
}
