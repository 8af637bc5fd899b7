// api.store: the gateway's KvStore seen through a per-plugin key namespace, so a plugin reaches only its own keys.
import type { BucketRule, KvStore } from '../kv/kv-store.js';
import { ruleFromConfig } from '../ratelimit/bucket.js';
import type { PluginStore, PluginTakeResult } from './contract.js';

/** Longest key a plugin may use; keeps a buggy plugin from filling Redis with megabyte keys. */
const MAX_KEY_LENGTH = 512;

/** Whether `text` is well-formed UTF-16 (no unpaired surrogate), i.e. has one exact UTF-8 form. */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * A key is a string of 1 to 512 UTF-16 code units with no unpaired surrogate. Redis takes keys as UTF-8, where every
 * unpaired surrogate becomes U+FFFD: "a\uD800" and "a\uDBFF" were one key (one bucket, one value) on Redis and two
 * in memory.
 */
function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`store key must be a string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
  if (!isWellFormed(key)) throw new TypeError('store key must be well-formed Unicode (it holds an unpaired UTF-16 surrogate)');
}

/**
 * The largest value a plugin may set: 1 MiB of UTF-8, as memcached's default item size. The same on both stores:
 * before, a value of any size was kept in memory (up to 100 000 of them) and up to 512 MB on Redis.
 */
export const MAX_VALUE_BYTES = 1024 * 1024;

/**
 * The longest expiry a plugin may give a value: 100 years (the cap of the gateway's own token lifetimes). Beyond,
 * Redis refused the expiry ("1e+300" is no integer) and the plugin got a store outage, where the memory store
 * accepted it.
 */
const MAX_TTL_MS = 100 * 365 * 24 * 3_600_000;

function checkTtl(ttlMs: number | undefined, required: boolean): void {
  if (ttlMs === undefined && !required) return;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError('ttlMs must be a positive number of milliseconds');
  if (ttlMs > MAX_TTL_MS) throw new TypeError('ttlMs must be at most 100 years');
}

/**
 * take()'s limit: `requests_per_minute` a finite number above 0 (a fraction is a rate: 0.5 is one request every two
 * minutes), `burst_size` a whole number from 1 (the bucket's capacity, in requests, as the config's `burst_size`),
 * and a bucket must refill from empty within 100 years (burst_size / requests_per_minute minutes, the longest expiry
 * of set and incr). Anything else is a TypeError at the call, on both stores alike. Before, both stores took
 * Infinity (or 1e308) as no limit at all; an infinite burst answered `remaining` Infinity from memory and
 * -9223372036854775808 from Redis, as did a burst past 2^53; numeric strings ("60") refused every take in memory
 * and counted normally on Redis; and a rate so slow that the refill outlasted Redis's expiry (1e-300 per minute)
 * was a store outage on Redis and a retryAfterMs of 6e304 in memory.
 */
function checkedRule(limit: { readonly requests_per_minute: number; readonly burst_size: number }): BucketRule {
  // Each read once: the rule is built from the values checked, never from a second read of a getter or a Proxy.
  const rpm: unknown = limit?.requests_per_minute;
  const burst: unknown = limit?.burst_size;
  if (typeof rpm !== 'number' || !Number.isFinite(rpm) || rpm <= 0) {
    throw new TypeError('take: requests_per_minute must be a finite number above 0');
  }
  if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1) {
    throw new TypeError('take: burst_size must be a whole number from 1');
  }
  if ((burst * 60_000) / rpm > MAX_TTL_MS) {
    throw new TypeError('take: the bucket must refill within 100 years (burst_size / requests_per_minute minutes)');
  }
  return ruleFromConfig({ requests_per_minute: rpm, burst_size: burst });
}

/**
 * The store of plugin instance `name`. Every key becomes `plugin:<name>:<key>`: values live in the KvStore's
 * value keyspace and buckets in its bucket keyspace, where the gateway's own keys never start with "plugin:".
 * The store is resolved per call, so a plugin kept across a reload keeps working on the same store.
 */
export function createPluginStore(name: string, kv: () => KvStore): PluginStore {
  const prefix = `plugin:${name}:`;
  return {
    async get(key) {
      checkKey(key);
      return kv().getValue(prefix + key);
    },
    async set(key, value, ttlMs) {
      checkKey(key);
      checkTtl(ttlMs, false);
      if (typeof value !== 'string') throw new TypeError('store values are strings (JSON.stringify an object)');
      // Redis keeps UTF-8, where an unpaired surrogate becomes U+FFFD: get() returned another string than set() was
      // given, on Redis only.
      if (!isWellFormed(value)) throw new TypeError('store value must be well-formed Unicode (it holds an unpaired UTF-16 surrogate)');
      // Checked on the length first: a string of more than 1 MiB code units is over in UTF-8 too, and is not encoded.
      if (value.length > MAX_VALUE_BYTES || Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
        throw new TypeError(`store value must be at most ${MAX_VALUE_BYTES} bytes of UTF-8`);
      }
      await kv().setValue(prefix + key, value, ttlMs);
    },
    async incr(key, ttlMs) {
      checkKey(key);
      checkTtl(ttlMs, true);
      return kv().increment(prefix + key, ttlMs);
    },
    async take(key, limit): Promise<PluginTakeResult> {
      checkKey(key);
      const rule = checkedRule(limit);
      const result = await kv().take(prefix + key, rule);
      return { allowed: result.allowed, remaining: result.remaining, retryAfterMs: result.retryAfterMs };
    },
  };
}
