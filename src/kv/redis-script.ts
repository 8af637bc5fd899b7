// The Lua token-bucket script of the Redis store: one atomic step per decision, on Redis's own clock.
import { createHash } from 'node:crypto';

/**
 * KEYS[1]: the bucket hash (fields t = tokens, u = last update in ms). ARGV[1]: capacity, ARGV[2]: refill per
 * second, ARGV[3]: the latest Redis time (ms) at which the gateway still waits for the answer, or 0 for no limit,
 * ARGV[4]: "1" for a look (KvStore.peek), the decision a take would make with nothing written.
 * Returns {allowed 0|1, remaining, retryAfterMs, resetMs, redisNowMs}, all integers; {-1, 0, 0, 0, redisNowMs} and
 * no change to the bucket when it runs after ARGV[3].
 *
 * The deadline: a command sent to a stalled Redis (DEBUG SLEEP, a fork, SIGSTOP) waits in its socket while the
 * gateway gives up on it after the command timeout and applies on_store_error; without the check, Redis ran the whole
 * backlog on waking and spent tokens for requests that had been refused with 503 (deny) or let through uncounted
 * (allow), throttling the client for requests it never got served. The gateway cannot unsend a command, so the
 * script refuses to spend once the gateway has stopped waiting. The deadline is on Redis's clock (the gateway
 * estimates it from `redisNowMs` of earlier replies, see redis.ts), so the bucket arithmetic keeps using TIME alone.
 *
 * This is src/ratelimit/bucket.ts `takeToken` line for line (same epsilons, same order of operations, so the same
 * IEEE results); the two are tested against the same cases. Time comes from `TIME` so gateways whose clocks
 * disagree still share one bucket correctly. Tokens are stored with %.17g so they round-trip exactly. The key
 * expires (PEXPIRE) when the bucket would be full again, since a full bucket is the same as no bucket. Every call
 * refills the stored tokens under the rule it is given and sets the expiry from that rule, longer as well as
 * shorter, so after a reload that slows a rule a key taken under the new rule lives until full under it. A key no
 * take touches between the reload and its old expiry still goes then: Redis cannot know the rule that will come
 * next (the memory store can, see RuleLog in bucket-table.ts).
 * `replicate_commands` lets Redis 3.2–4 accept a write after TIME; from Redis 5 it is the default and a no-op.
 */
export const TAKE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local eps = 1e-9
local mseps = 1e-6
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local deadline = tonumber(ARGV[3])
if deadline ~= nil and deadline > 0 and now > deadline then return {-1, 0, 0, 0, math.floor(now)} end
local saved = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(saved[1])
local updated = tonumber(saved[2])
local at
if tokens == nil or updated == nil then
  tokens = capacity
  at = now
else
  at = now
  if now > updated then tokens = tokens + ((now - updated) * rate) / 1000 end
  if tokens > capacity then tokens = capacity end
end
local allowed
local retry
if tokens + eps >= 1 then
  allowed = 1
  tokens = tokens - 1
  if tokens < 0 then tokens = 0 end
  retry = 0
else
  allowed = 0
  retry = math.ceil(((1 - tokens) * 1000) / rate - mseps)
  if retry < 1 then retry = 1 end
end
local missing = capacity - tokens
local reset
if missing <= eps then reset = 0 else reset = math.ceil((missing * 1000) / rate - mseps) end
local remaining = math.floor(tokens + eps)
if ARGV[4] == '1' then return {allowed, remaining, retry, reset, math.floor(now)} end
if reset > 0 then
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', at))
  redis.call('PEXPIRE', KEYS[1], reset)
else
  redis.call('DEL', KEYS[1])
end
return {allowed, remaining, retry, reset, math.floor(now)}
`;

/** SHA1 of TAKE_SCRIPT, for EVALSHA. */
export const TAKE_SCRIPT_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex');

/**
 * KEYS[1]: a bucket hash as TAKE_SCRIPT keeps it. ARGV[1]: capacity, ARGV[2]: refill per second. Gives back one token:
 * refills to now as the take does, adds one, never above capacity; a bucket then full is deleted, else stored with
 * the expiry of its new fill time. An absent bucket (full) is left absent. src/ratelimit/bucket.ts `refundToken`
 * line for line. Returns 1 when a bucket was changed, 0 when there was none.
 */
export const REFUND_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local eps = 1e-9
local mseps = 1e-6
local saved = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(saved[1])
local updated = tonumber(saved[2])
if tokens == nil or updated == nil then return 0 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
if now > updated then tokens = tokens + ((now - updated) * rate) / 1000 end
tokens = tokens + 1
if tokens > capacity then tokens = capacity end
local missing = capacity - tokens
if missing <= eps then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((missing * 1000) / rate - mseps))
end
return 1
`;

/** SHA1 of REFUND_SCRIPT, for EVALSHA. */
export const REFUND_SCRIPT_SHA = createHash('sha1').update(REFUND_SCRIPT).digest('hex');

/**
 * KEYS[1]: a plain value (the plugins' store). ARGV[1]: its expiry in ms. Refuses a value that is not an integer
 * with a NOTINT error (INCR's own error could not be told apart from others), increments, and sets the expiry only
 * when the key has none: a new counter starts its window, a running one keeps it. "An integer" is the memory
 * store's rule (memory.ts, INTEGER_VALUE): decimal digits without a leading zero or "-0", below 2^53 - 1 in size, so
 * the two stores agree and every count is exact as a JavaScript number ("007" or "99999999999999999999" made INCR
 * fail with an error that read as an outage).
 */
export const INCREMENT_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v and not ((v == '0' or string.match(v, '^%-?[1-9]%d*$')) and #v <= 17 and math.abs(tonumber(v)) < 9007199254740991) then
  return redis.error_reply('NOTINT value is not an integer')
end
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

/** SHA1 of INCREMENT_SCRIPT, for EVALSHA. */
export const INCREMENT_SCRIPT_SHA = createHash('sha1').update(INCREMENT_SCRIPT).digest('hex');

/**
 * The readiness probe (RedisKvStore.ready). KEYS[1]: a key of the buckets' shape that no limiter uses. Writes it and
 * deletes it again: a Redis that would refuse the limiter's and the revocations' writes refuses this SET the same way
 * (READONLY on a replica, OOM at maxmemory under noeviction, MISCONF after a failed save, NOPERM when an ACL takes
 * scripting or the keys away), while nothing is left behind, so a probe every second adds no key, no expiry and no
 * count to anything. Not replicated (REPL_NONE, where the server has it): its net effect is nothing. Returns 1.
 */
export const READY_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
if redis.set_repl then redis.set_repl(redis.REPL_NONE) end
redis.call('SET', KEYS[1], '1')
redis.call('DEL', KEYS[1])
return 1
`;

/** SHA1 of READY_SCRIPT, for EVALSHA. */
export const READY_SCRIPT_SHA = createHash('sha1').update(READY_SCRIPT).digest('hex');
