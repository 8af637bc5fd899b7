// Least connections, weighted: the backend with the fewest in-flight requests per unit of weight wins.
import type { Candidate, Strategy } from './strategy.js';

/**
 * Compares inflight/weight without dividing (a.inflight * b.weight < b.inflight * a.weight). Ties are broken by a
 * rotating start index, so an idle pool spreads requests instead of always sending them to the first backend.
 */
export class LeastConnections implements Strategy {
  #offset = 0;

  pick(candidates: readonly Candidate[], exclude: Candidate | undefined): number {
    const n = candidates.length;
    if (n === 0) return -1;
    const start = this.#offset;
    this.#offset = start + 1 >= n ? 0 : start + 1;
    let best = -1;
    let bestInflight = 0;
    let bestWeight = 1;
    for (let k = 0; k < n; k++) {
      const i = start + k < n ? start + k : start + k - n;
      const c = candidates[i]!;
      if (!c.available || c === exclude) continue;
      if (best === -1 || c.inflight * bestWeight < bestInflight * c.weight) {
        best = i;
        bestInflight = c.inflight;
        bestWeight = c.weight;
      }
    }
    return best;
  }
}
