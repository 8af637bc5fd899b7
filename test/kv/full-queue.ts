// The silent-link tests' full-queue probe: with a small maxPendingCommands, a store whose link went silent fills its
// queue well before the silence bound, and the commands after it are refused at once. How soon are takes decided by
// Redis again?
import { performance } from 'node:perf_hooks';

/**
 * From now (call it right after silencing the link): 5 takes every 50 ms, not waiting for their answers, cycling over
 * `buckets`, until 40 takes in a row, sent at least `commandTimeoutMs` ago, were all decided. Resolves with the ms
 * that took, or undefined if it did not happen within `boundMs`.
 */
export async function decidedAgainAfter(
  take: (bucket: string) => Promise<unknown>,
  buckets: readonly string[],
  commandTimeoutMs: number,
  boundMs: number,
): Promise<number | undefined> {
  const silencedAt = performance.now();
  const outcomes: boolean[] = []; // in the order sent
  let recoveredAfter: number | undefined;
  while (recoveredAfter === undefined && performance.now() - silencedAt < boundMs) {
    for (let i = 0; i < 5; i++) {
      const at = outcomes.push(false) - 1;
      take(buckets[at % buckets.length]!).then(() => void (outcomes[at] = true), () => undefined);
    }
    await new Promise((r) => setTimeout(r, 50));
    const settledUpTo = outcomes.length - 5 * Math.ceil(commandTimeoutMs / 50) - 5;
    if (settledUpTo >= 40 && outcomes.slice(settledUpTo - 40, settledUpTo).every(Boolean)) recoveredAfter = performance.now() - silencedAt;
  }
  return recoveredAfter;
}
