// The balancer's configured durations as setTimeout delays.

/** The longest delay a Node.js timer holds (2^31-1 ms, about 24.8 days); setTimeout fires a longer one after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A configured duration as a setTimeout delay: capped at MAX_TIMER_MS, since the config accepts longer ones (a
 * `health_check.interval` of 30d would otherwise probe every backend about every millisecond, a `queue_timeout` of
 * 30d answer every queued request 503 at once).
 */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
