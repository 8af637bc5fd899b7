// A Sentinel-managed Redis master through node-redis's own createSentinel: the client asks the sentinels where the
// master is and follows a promotion (switch-master) without a restart.
import { createSentinel } from '@redis/client';
import { connectInBackground, nodeClientOptions, NO_CLIENT_TIMEOUT, silenceBound, SilentConnectionError, type NodeSettings, type RedisConnection } from './redis-connection.js';

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
  const open = () =>
    createSentinel({
      name: target.name,
      sentinelRootNodes: urls.map((url) => ({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 26379) })),
      nodeClientOptions: { ...node, ...credentials, ...database, socket, pingInterval },
      sentinelClientOptions: { ...node, ...credentials, socket, pingInterval },
      commandOptions: NO_CLIENT_TIMEOUT,
      // Belt and braces beside the switch-master subscription: re-read the topology every few seconds.
      scanInterval: 5_000,
    });
  type Sentinel = ReturnType<typeof open>;
  let onError: (err: unknown) => void = () => undefined;
  let closed = false;
  /**
   * The socket timeout alone does not end a master link gone silent under load: every command written counts as
   * activity on the socket, so while requests keep coming it never fires, every command met the store's command
   * timeout (on_store_error: deny answered 503) and the sentinels, which reach the master on their own connections,
   * never announce a change. So the store watches for silence itself, as the single server does: when a command
   * times out and nothing it sent has settled for the socket timeout, a new client is opened (a rediscovery through
   * the sentinels and a new master connection), and takes the silent one's place once ready.
   */
  let unsettledSince: number | undefined;
  let silenceCheckQueued = false;
  let replacement: Sentinel | undefined;
  const begin = (s: Sentinel): void => {
    s.on('error', (err: unknown) => {
      if (s === current) onError(err);
    });
    connectInBackground(() => s.connect(), (err) => {
      if (s === current) onError(err);
    }, () => closed || (s !== current && s !== replacement), settings.maxReconnectDelayMs);
  };
  const end = (s: Sentinel): void => void s.destroy().catch(() => undefined);
  /** Replaced clients still closing: ended at once if the store closes first. */
  const retiring = new Set<Sentinel>();
  /**
   * The replaced client is closed, not destroyed: a master that was paused past the bound (not a silent link) answers
   * again on it, and destroying it failed the commands in flight there, already decided by Redis (their tokens taken,
   * the requests answered on_store_error). A link still silent never drains: it is ended after the bound.
   */
  const retire = (s: Sentinel): void => {
    retiring.add(s);
    const bound = setTimeout(() => end(s), socketTimeout);
    bound.unref();
    s.close().then(
      () => undefined,
      () => end(s),
    ).finally(() => {
      clearTimeout(bound);
      retiring.delete(s);
    });
  };
  let current: Sentinel = open();
  const replaceSilent = (): void => {
    if (closed || replacement !== undefined) return;
    const next = open();
    replacement = next;
    next.once('ready', () => {
      if (closed || replacement !== next) return;
      replacement = undefined;
      const silent = current;
      current = next;
      unsettledSince = undefined;
      retire(silent);
    });
    begin(next);
    onError(new SilentConnectionError(socketTimeout));
  };
  return {
    send: (_key, args) => {
      const sentOn = current;
      unsettledSince ??= performance.now();
      const settled = (): void => {
        if (sentOn === current) unsettledSince = undefined;
      };
      return sentOn.sendCommand(false, [...args]).then(
        (reply) => {
          settled();
          return reply;
        },
        (err: unknown) => {
          // A full queue's refusal says nothing came back: it is how a silent link looks under a heavy load.
          if (!(err instanceof Error && err.message === 'The queue is full')) settled();
          throw err;
        },
      );
    },
    commandTimedOut() {
      // Decided after this turn of the event loop has read what the sockets hold (see singleServer): a gateway whose
      // own loop stalled must not take a healthy link for a silent one.
      if (closed || silenceCheckQueued) return;
      silenceCheckQueued = true;
      setImmediate(() => {
        silenceCheckQueued = false;
        if (closed || !current.isReady || unsettledSince === undefined || performance.now() - unsettledSince < socketTimeout) return;
        replaceSilent();
      });
    },
    get isReady() {
      return current.isReady;
    },
    start(errors) {
      onError = errors;
      begin(current);
    },
    async close() {
      closed = true;
      const pending = replacement;
      replacement = undefined;
      if (pending !== undefined) end(pending); // nothing was ever sent on it
      for (const s of retiring) end(s);
      if (current.isOpen) await current.close();
    },
    destroy() {
      closed = true;
      const pending = replacement;
      replacement = undefined;
      if (pending !== undefined) end(pending);
      for (const s of retiring) end(s);
      end(current);
    },
  };
}
