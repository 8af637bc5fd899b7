// Parses human durations ("500ms", "10s", "15m", "2h", "7d", or a number of seconds) into milliseconds.

/**
 * The longest delay a Node.js timer holds: 2^31-1 ms, about 24.8 days. setTimeout and setInterval fire a longer one
 * after 1 ms (with a TimeoutOverflowWarning on stderr), and a socket's setTimeout truncates it with the same warning
 * on every call. Durations that bound a wait or schedule work are capped here when the config is read.
 */
export const MAX_TIMER_MS = 2_147_483_647;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;

/**
 * Returns milliseconds, or undefined when the value is not a non-negative duration. A bare number means seconds. A
 * positive duration is at least 1 ms: rounded to 0 (`0.0001`, `0.4ms`), it meant "off" to every timeout that takes 0
 * so (timeouts.request, request_body_chunk), the opposite of the tiny bound written.
 */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? atLeastOneIfPositive(value * 1_000) : undefined;
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  return atLeastOneIfPositive(Number(match[1]) * UNIT_MS[match[2] ?? 's']!);
}

/** `n` rounded, and 1 for a positive `n` that rounds to 0 (durations and sizes). */
export function atLeastOneIfPositive(n: number): number {
  return n > 0 ? Math.max(1, Math.round(n)) : Math.round(n);
}
