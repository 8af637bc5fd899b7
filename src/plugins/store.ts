// api.store: the gateway's KvStore seen through a per-plugin key namespace, so a plugin reaches only its own keys.
import type { KvStore } from '../kv/kv-store.js';
import { ruleFromConfig } from '../ratelimit/bucket.js';
import type { PluginStore, PluginTakeResult } from './contract.js';

/** Longest key a plugin may use; keeps a buggy plugin from filling Redis with megabyte keys. */
const MAX_KEY_LENGTH = 512;

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`store key must be a string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

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
      await kv().setValue(prefix + key, value, ttlMs);
    },
    async incr(key, ttlMs) {
      checkKey(key);
      checkTtl(ttlMs, true);
      return kv().increment(prefix + key, ttlMs);
    },
    async take(key, limit): Promise<PluginTakeResult> {
      checkKey(key);
      if (!(limit?.requests_per_minute > 0) || !(limit?.burst_size >= 1)) {
        throw new TypeError('take needs { requests_per_minute > 0, burst_size >= 1 }');
      }
      const result = await kv().take(prefix + key, ruleFromConfig(limit));
      return { allowed: result.allowed, remaining: result.remaining, retryAfterMs: result.retryAfterMs };
    },
  };
}
