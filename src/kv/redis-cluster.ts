// A Redis Cluster through node-redis's own createCluster: seed nodes, slot routing, MOVED/ASK, failover discovery,
// plus a short retry of TRYAGAIN, which node-redis passes through.
import { createCluster } from 'redis';
import { connectInBackground, nodeClientOptions, NO_CLIENT_TIMEOUT, type NodeSettings, type RedisConnection } from './redis-connection.js';

/** TRYAGAIN retries: a multi-key command on a slot being migrated; the migration moves on within milliseconds. */
const TRYAGAIN_ATTEMPTS = 5;
const TRYAGAIN_DELAY_MS = 20;

/**
 * How long a node may be reconnecting before the client asks the other nodes for the slot map again. Short, so a
 * promoted replica is found soon after the cluster elects it (node-redis's default waits 5 s).
 */
const TOPOLOGY_REFRESH_AFTER_MS = 300;

/**
 * Credentials and TLS from the first seed URL: node-redis uses the seeds only to discover the cluster, so what every
 * node connection needs must go into `defaults`. All nodes of one cluster share one password in practice.
 */
function credentialsOf(seed: string): { username?: string; password?: string; tls: boolean } {
  const url = new URL(seed);
  return {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
  };
}

function isTryAgain(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('TRYAGAIN');
}

/** A Redis Cluster found from `seeds` (config `redis.cluster`); commands go to the master of their key's slot. */
export function redisCluster(seeds: readonly string[], settings: NodeSettings): RedisConnection {
  const { tls, ...credentials } = credentialsOf(seeds[0] as string);
  const node = nodeClientOptions(settings);
  const cluster = createCluster({
    rootNodes: seeds.map((url) => ({ url, socket: { connectTimeout: settings.connectTimeoutMs } })),
    defaults: { ...node, ...credentials, socket: { ...node.socket, ...(tls ? { tls: true as const } : {}) } },
    commandOptions: NO_CLIENT_TIMEOUT,
    topologyRefreshOnReconnectionAttemptStrategy: TOPOLOGY_REFRESH_AFTER_MS,
  });
  let closed = false;

  const send = async (key: string | undefined, args: readonly string[]): Promise<unknown> => {
    // node-redis routes by the server's command tips, not by the key it is given: a command that names no key
    // (ROLE, WAIT) goes to an arbitrary node, or to every master. Ours must reach the master of `key`, the one that
    // took the write just before (WAIT counts the writes of its own connection), so it is sent to that node's client,
    // the same connection the keyed commands of that slot use.
    if (key !== undefined && !args.includes(key)) return (await cluster.getNodeClientForKey(key)).sendCommand([...args]);
    for (let attempt = 1; ; attempt++) {
      try {
        return await cluster.sendCommand(key, false, [...args]);
      } catch (err) {
        if (!isTryAgain(err) || attempt >= TRYAGAIN_ATTEMPTS || closed) throw err;
        await new Promise((resolve) => setTimeout(resolve, TRYAGAIN_DELAY_MS * attempt));
      }
    }
  };

  return {
    send,
    get isReady() {
      return cluster.isReady;
    },
    start(onError) {
      cluster.on('error', onError);
      // A node's own connection errors (a dead master: ECONNREFUSED; a bad password: WRONGPASS) arrive as
      // 'node-error', not 'error': without this the store never learnt why a slot's commands failed.
      cluster.on('node-error', onError);
      connectInBackground(() => cluster.connect(), onError, () => closed, settings.maxReconnectDelayMs);
    },
    async close() {
      closed = true;
      if (cluster.isOpen) await cluster.close();
    },
    destroy() {
      closed = true;
      if (cluster.isOpen) cluster.destroy();
    },
  };
}
