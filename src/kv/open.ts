// Picks the KvStore the config asks for: a Redis server, a Redis Cluster, a Sentinel-managed master, or memory.
import type { Config } from '../config/schema.js';
import type { KvStore } from './kv-store.js';
import type { RedisKvStore } from './redis.js';
import { createMemoryKvStore } from './memory.js';

/** True when the config names a Redis deployment (so readiness checks it); false means the memory store. */
export function usesRedis(redis: Config['redis']): boolean {
  return redis.url !== '' || redis.cluster.length > 0 || redis.sentinel.nodes.length > 0;
}

/**
 * Opens the store once at start-up. The schema has already refused more than one topology; with none set it is
 * the in-process memory store (the shipped `url: "${REDIS_URL:-}"` with REDIS_URL unset). The Redis client is
 * imported only when a Redis deployment is configured (start-up time and memory, bench/startup.ts).
 * `onUnreplicatedRevocation` counts logouts whose revocation no replica confirmed (metrics).
 */
export async function openKvStore(redis: Config['redis'], onUnreplicatedRevocation: () => void): Promise<KvStore> {
  const store = await openRedisKvStore(redis, onUnreplicatedRevocation);
  if (store === undefined) return createMemoryKvStore();
  await store.untilConnected();
  return store;
}

/**
 * The Redis store of whichever deployment the config names (server, Cluster or Sentinel), or undefined when it names
 * none. Shared by start-up and the CLI's revoking commands, so both reach the same Redis however it is deployed.
 */
export async function openRedisKvStore(redis: Config['redis'], onUnreplicatedRevocation?: () => void): Promise<RedisKvStore | undefined> {
  if (!usesRedis(redis)) return undefined;
  const { createRedisKvStore } = await import('./redis.js');
  const common = { commandTimeoutMs: redis.command_timeout, keyPrefix: redis.key_prefix, ...(onUnreplicatedRevocation ? { onUnreplicatedRevocation } : {}) };
  if (redis.cluster.length > 0) return createRedisKvStore({ ...common, cluster: redis.cluster });
  if (redis.sentinel.nodes.length > 0) return createRedisKvStore({ ...common, sentinel: redis.sentinel });
  return createRedisKvStore({ ...common, url: redis.url });
}
