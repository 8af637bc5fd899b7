// Pure token-bucket arithmetic: (state, rule, now) → (new state, decision). No clock reads, no I/O.
import type { BucketRule, TakeResult } from '../kv/kv-store.js';

/**
 * Slack for floating-point refill sums: 0.6 s at 100/min adds 0.9999999999999999 tokens, which must count as one.
 * The Redis Lua script uses the same constant (src/kv/redis-script.ts); keep them equal.
 */
export const TOKEN_EPSILON = 1e-9;
/** Slack before rounding a duration up to whole ms, so 2999.0000000001 ms (float noise) reports 2999, not 3000. */
export const MS_EPSILON = 1e-6;

/** What a store keeps per bucket. */
export interface BucketState {
  /** Tokens left (fractional) at `updatedMs`. */
  readonly tokens: number;
  /** Time of the last decision (ms, the store's clock). */
  readonly updatedMs: number;
  /** When the bucket will be full again, at which point the state carries no information and may be dropped. */
  readonly fullAtMs: number;
  /**
   * Until when the bucket holds less than one token, i.e. its client is refused (`updatedMs` when it has one). A
   * store must not drop a bucket before this time: that would lift a limit that is in force.
   */
  readonly emptyUntilMs: number;
}

/** The outcome of one take: the state to store and the decision to report. */
export interface BucketStep {
  readonly state: BucketState;
  readonly result: TakeResult;
}

/**
 * Takes one token from a bucket. `state` undefined means a new client: the bucket starts full. Refill is
 * continuous (fractional): `elapsed * refillPerSecond / 1000` tokens, never above capacity. A clock that steps
 * backwards (Redis's TIME after an NTP step, a failover to a replica whose clock is behind) grants nothing and takes
 * nothing: the stored tokens are dated at the new time, so the refill, and the Retry-After given, count from it.
 * Every time in the result is rounded up to whole ms.
 *
 * The arithmetic, including the order of operations, is mirrored by the Lua script of the Redis store, so both
 * stores make the same decision from the same inputs.
 */
export function takeToken(state: BucketState | undefined, rule: BucketRule, nowMs: number): BucketStep {
  const capacity = rule.capacity;
  const rate = rule.refillPerSecond;
  let tokens: number;
  let at: number;
  if (state === undefined) {
    tokens = capacity;
    at = nowMs;
  } else {
    // A clock that stepped back (updatedMs ahead of now) refills nothing, and the bucket is dated now: kept at the
    // later time it would refill nothing until the clock got back there, however long the step.
    at = nowMs;
    tokens = nowMs > state.updatedMs ? state.tokens + ((nowMs - state.updatedMs) * rate) / 1000 : state.tokens;
    if (tokens > capacity) tokens = capacity;
  }

  let allowed: boolean;
  let retryAfterMs: number;
  if (tokens + TOKEN_EPSILON >= 1) {
    allowed = true;
    tokens = tokens - 1;
    if (tokens < 0) tokens = 0;
    retryAfterMs = 0;
  } else {
    allowed = false;
    retryAfterMs = Math.ceil(((1 - tokens) * 1000) / rate - MS_EPSILON);
    if (retryAfterMs < 1) retryAfterMs = 1;
  }

  const missing = capacity - tokens;
  const resetMs = missing <= TOKEN_EPSILON ? 0 : Math.ceil((missing * 1000) / rate - MS_EPSILON);
  const remaining = Math.floor(tokens + TOKEN_EPSILON);
  const emptyMs = tokens + TOKEN_EPSILON >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / rate - MS_EPSILON);
  return {
    state: { tokens, updatedMs: at, fullAtMs: at + resetMs, emptyUntilMs: at + emptyMs },
    result: { allowed, remaining, retryAfterMs, resetMs },
  };
}

/**
 * Gives back the token a take spent, for a decision that a later step undid (a login refused by its per-email bucket
 * gave back its per-email + address token: it never reached the password check). The bucket is refilled to `nowMs`
 * as `takeToken` does, gains one token, never above capacity. Undefined when it is then full: its state may be
 * dropped, as a new bucket starts full. The Redis store's refund script mirrors it (src/kv/redis-script.ts).
 */
export function refundToken(state: BucketState | undefined, rule: BucketRule, nowMs: number): BucketState | undefined {
  if (state === undefined) return undefined; // no bucket: already full
  const capacity = rule.capacity;
  const rate = rule.refillPerSecond;
  let tokens = nowMs > state.updatedMs ? state.tokens + ((nowMs - state.updatedMs) * rate) / 1000 : state.tokens;
  tokens = tokens + 1;
  if (tokens > capacity) tokens = capacity;
  const missing = capacity - tokens;
  if (missing <= TOKEN_EPSILON) return undefined;
  const resetMs = Math.ceil((missing * 1000) / rate - MS_EPSILON);
  const emptyMs = tokens + TOKEN_EPSILON >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / rate - MS_EPSILON);
  return { tokens, updatedMs: nowMs, fullAtMs: nowMs + resetMs, emptyUntilMs: nowMs + emptyMs };
}

/** The rule of `requests_per_minute` / `burst_size` config: capacity = burst, refill = rpm / 60 per second. */
export function ruleFromConfig(limit: { readonly requests_per_minute: number; readonly burst_size: number }): BucketRule {
  return { capacity: limit.burst_size, refillPerSecond: limit.requests_per_minute / 60 };
}

/**
 * A bucket that lends: a take that finds it empty still gets its token on credit when the debt would be repaid
 * within `maxDelayMs`, and its taker waits until then (see `creditWaitMs`); beyond that the take is refused. So N
 * concurrent takers of an empty bucket are admitted one refill interval apart instead of all at once.
 *
 * A debt of up to `maxDelayMs * refillPerSecond` tokens is the same as an ordinary bucket holding that many tokens
 * more (tokens' = tokens + credit, capacity' = capacity + credit): it refills at the same rate, caps at the same real
 * capacity, and refuses exactly when the debt's wait would pass `maxDelayMs`. So both stores run it with their
 * ordinary `take`, atomically, with no script of its own; only the rule they are given changes.
 */
export function creditRule(rule: BucketRule, maxDelayMs: number): BucketRule {
  return { capacity: rule.capacity + (maxDelayMs * rule.refillPerSecond) / 1000, refillPerSecond: rule.refillPerSecond };
}

/**
 * How long the taker of an allowed take on `creditRule(rule, …)` waits: the time the bucket needs to repay its
 * debt, i.e. until the token it was lent would have refilled; 0 when the bucket still held a whole token. Read from
 * `resetMs` (time until full, exact to the ms): everything beyond the time `rule` takes to fill from empty is debt.
 * Below 1 ms counts as none, so the rounding of `resetMs` never makes a taker of a real token wait.
 */
export function creditWaitMs(result: TakeResult, rule: BucketRule): number {
  if (!result.allowed) return 0;
  const debtMs = result.resetMs - (rule.capacity * 1000) / rule.refillPerSecond;
  return debtMs >= 1 ? Math.ceil(debtMs - MS_EPSILON) : 0;
}
