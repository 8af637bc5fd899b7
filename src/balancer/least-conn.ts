// Least connections, weighted: the backend with the fewest in-flight requests per unit of weight wins.
import type { Candidate, Strategy } from './strategy.js';

/**
 * Compares inflight/weight without dividing (a.inflight * b.weight < b.inflight * a.weight). Backends tied on that
 * ratio are chosen by smooth weighted round robin among themselves, as nginx's least_conn does: under light load
 * every backend sits at 0 in flight, and a tie broken by plain rotation would send 5:1:1 weights 1:1:1 shares.
 */
export class LeastConnections implements Strategy {
  /** Running round-robin scores by candidate index (the candidate list keeps its order for a strategy's life). */
  readonly #current: Float64Array;

  constructor(size: number) {
    this.#current = new Float64Array(size);
  }

  pick(candidates: readonly Candidate[], exclude: Candidate | undefined): number {
    const n = candidates.length;
    let best = -1;
    let bestInflight = 0;
    let bestWeight = 1;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      const c = candidates[i]!;
      if (!c.available || c === exclude) continue;
      if (best === -1) {
        best = i;
        bestInflight = c.inflight;
        bestWeight = c.weight;
        ties = 1;
        continue;
      }
      const lhs = c.inflight * bestWeight;
      const rhs = bestInflight * c.weight;
      if (lhs < rhs) {
        best = i;
        bestInflight = c.inflight;
        bestWeight = c.weight;
        ties = 1;
      } else if (lhs === rhs) ties++;
    }
    if (ties <= 1) return best;
    // Smooth weighted round robin over the tied backends only (RoundRobin's algorithm): each adds its weight to
    // its score, the highest score wins and gives back the total. Scores of backends outside the tie stay put.
    const current = this.#current;
    let total = 0;
    let chosen = -1;
    for (let i = best; i < n; i++) {
      const c = candidates[i]!;
      if (!c.available || c === exclude || c.inflight * bestWeight !== bestInflight * c.weight) continue;
      current[i]! += c.weight;
      total += c.weight;
      if (chosen === -1 || current[i]! > current[chosen]!) chosen = i;
    }
    current[chosen]! -= total;
    return chosen;
  }
}
