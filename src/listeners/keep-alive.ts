// The keep-alive idle time handed to node:http, within what its timer can hold.
import { MAX_TIMER_MS } from '../config/duration.js';

/**
 * node:http arms a finished keep-alive connection's socket timer with `keepAliveTimeout` plus one second of slack of
 * its own, so a `server.timeouts.idle` at the config's cap (a Node.js timer's longest delay) overflowed it: a
 * TimeoutOverflowWarning on stderr after every response. Keeping that second off the top costs nothing at 24.8 days.
 */
export function keepAliveTimeoutFor(idleMs: number): number {
  return Math.min(idleMs, MAX_TIMER_MS - 1_000);
}
