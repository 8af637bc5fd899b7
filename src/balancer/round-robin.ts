// Smooth weighted round robin (nginx's algorithm): weights 5,1,1 give a,a,b,a,c,a,a rather than a burst of five a's.
import type { Candidate, Strategy } from './strategy.js';

/**
 * Each pick adds every eligible backend's weight to its running score, chooses the highest score, and takes the
 * total weight off the winner. Over any window of sum(weights) picks, each backend is chosen exactly `weight` times.
 */
export class RoundRobin implements Strategy {
  readonly #current: Float64Array;

  constructor(size: number) {
    this.#current = new Float64Array(size);
  }

  pick(candidates: readonly Candidate[], exclude: Candidate | undefined): number {
    const current = this.#current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (!c.available || c === exclude) continue;
      current[i]! += c.weight;
      total += c.weight;
      if (best === -1 || current[i]! > current[best]!) best = i;
    }
    if (best !== -1) current[best]! -= total;
    return best;
  }
}
