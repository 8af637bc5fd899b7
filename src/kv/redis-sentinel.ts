// A Sentinel-managed Redis master through node-redis's own createSentinel: the client asks the sentinels where the
// master is and follows a promotion (switch-master) without a restart.
import { createSentinel } from 'redis';
import { connectInBackground, nodeClientOptions, NO_CLIENT_TIMEOUT, silenceBound, type NodeSettings, type RedisConnection } from './redis-connection.js';

/** Config `redis.sentinel`: the monitored master's name and some sentinels' redis:// URLs. */
export interface SentinelTarget {
  readonly name: string;
  readonly nodes: readonly string[];
}

/**
 * Credentials from the first sentinel URL are used for the sentinels and for the data nodes alike (the common
 * setup: one `requirepass`, and `sentinel auth-pass` set to it).
 */
function credentialsOf(url: URL): { username?: string; password?: string } {
  return {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/**
 * The database of the data nodes: the first URL's `/N`, as `redis.url` names one (a sentinel itself has none).
 * Without it a Sentinel store used database 0 whatever the URLs said, so two deployments kept apart by their
 * database shared their rate-limit buckets.
 */
function databaseOf(url: URL): { database?: number } {
  const match = /^\/(\d+)$/.exec(url.pathname);
  return match === null || Number(match[1]) === 0 ? {} : { database: Number(match[1]) };
}

/** The master that the sentinels `target.nodes` monitor under `target.name`. */
export function redisSentinel(target: SentinelTarget, settings: NodeSettings): RedisConnection {
  const urls = target.nodes.map((node) => new URL(node));
  const credentials = credentialsOf(urls[0] as URL);
  const database = databaseOf(urls[0] as URL);
  const node = nodeClientOptions(settings);
  // TLS for the sentinels and the data nodes they name when any sentinel URL is rediss://: node-redis takes the
  // sentinels as host and port only, so the scheme must become a socket option here. Any, not the first: a list
  // that mixes the two schemes gets TLS (a failed handshake, never a password sent in clear text).
  const tls = urls.some((url) => url.protocol === 'rediss:') ? { tls: true as const } : {};
  // node-redis waits for a node's handshake reply without a bound, and its Sentinel client waits for each step of a
  // rediscovery in turn: a frozen sentinel asked first (at start, or at a rescan) or a frozen master it had been
  // told of held the client forever, and the store never followed the promotion the other sentinels made (a paused
  // machine running a master and a sentinel). A silent socket is closed (silenceBound), so the step fails and the
  // next node is tried.
  const { socketTimeout, pingInterval } = silenceBound(settings);
  const socket = { ...node.socket, ...tls, socketTimeout };
  const sentinel = createSentinel({
    name: target.name,
    sentinelRootNodes: urls.map((url) => ({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 26379) })),
    nodeClientOptions: { ...node, ...credentials, ...database, socket, pingInterval },
    sentinelClientOptions: { ...node, ...credentials, socket, pingInterval },
    commandOptions: NO_CLIENT_TIMEOUT,
    // Belt and braces beside the switch-master subscription: re-read the topology every few seconds.
    scanInterval: 5_000,
  });
  let closed = false;
  return {
    send: (_key, args) => sentinel.sendCommand(false, [...args]),
    get isReady() {
      return sentinel.isReady;
    },
    start(onError) {
      sentinel.on('error', onError);
      connectInBackground(() => sentinel.connect(), onError, () => closed, settings.maxReconnectDelayMs);
    },
    async close() {
      closed = true;
      if (sentinel.isOpen) await sentinel.close();
    },
    destroy() {
      closed = true;
      void sentinel.destroy().catch(() => undefined);
    },
  };
}
