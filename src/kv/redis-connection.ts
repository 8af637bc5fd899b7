// One Redis deployment behind one small interface: a single server, a Redis Cluster or a Sentinel-managed master.
// The store (redis.ts) sends commands through it and never knows which topology answers.
import { createClient } from '@redis/client';
import { MAX_TIMER_MS } from '../config/duration.js';
import { isErrorReply } from './describe.js';

/** A connection to one Redis topology. Commands fail at once while it is not connected (no offline queue). */
export interface RedisConnection {
  /**
   * Sends one command. `routingKey` is a key the command touches: in a cluster it picks the slot's master (and the
   * command follows MOVED/ASK); elsewhere it is ignored. Rejects with the server's or the socket's error.
   */
  send(routingKey: string | undefined, args: readonly string[]): Promise<unknown>;
  /**
   * Told when a command sent with `routingKey` got no reply within the store's command timeout. A cluster asks the
   * other nodes for the slot map then: a frozen master's connection never fails, so nothing else would tell the
   * client that the cluster has promoted its replica.
   */
  commandTimedOut?(routingKey: string | undefined): void;
  /** True while commands can be sent (for /status); a stalled server may still time them out. */
  readonly isReady: boolean;
  /** Connects in the background, retrying forever with backoff until close(); never rejects. */
  start(onError: (err: unknown) => void): void;
  /** Graceful close: waits for commands in flight. */
  close(): Promise<void>;
  /** Immediate close: drops commands in flight. */
  destroy(): void;
}

/** The socket and queue settings shared by every node connection of every topology. */
export interface NodeSettings {
  /** Longest wait for a TCP connect before the next attempt. */
  readonly connectTimeoutMs: number;
  /** Commands waiting for a stalled node before new ones fail immediately. */
  readonly maxPendingCommands: number;
  /** Upper bound of the reconnect backoff. */
  readonly maxReconnectDelayMs: number;
  /** The store's command timeout (`redis.command_timeout`): a reply may take this long (WAIT waits this long). */
  readonly commandTimeoutMs: number;
}

/** Exponential backoff from 50 ms up to `maxDelayMs`, with jitter so gateways do not reconnect in step. */
export function backoff(maxDelayMs: number): (retries: number) => number {
  return (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelayMs) + Math.floor(Math.random() * 50);
}

/** node-redis options for one node's client (also the `defaults` of a cluster and the nodes of a Sentinel setup). */
export function nodeClientOptions(settings: NodeSettings) {
  return {
    // Fail fast while disconnected instead of queueing commands until Redis returns.
    disableOfflineQueue: true,
    // Bounds memory while Redis is stalled: past this many pending commands, new ones fail at once.
    commandsQueueMaxLength: settings.maxPendingCommands,
    // node-redis's Redis Enterprise maintenance handshake (on by default with RESP3) looks the URL's host up in DNS
    // as written: an IPv6 literal (`redis://[::1]:6379`) is looked up with its brackets, fails with ENOTFOUND, and
    // fails every connection attempt, so the store never connected. The gateway uses none of it.
    maintNotifications: 'disabled' as const,
    socket: {
      connectTimeout: settings.connectTimeoutMs,
      // Never give up reconnecting.
      reconnectStrategy: backoff(settings.maxReconnectDelayMs),
    },
  };
}

/**
 * How a node connection notices a link gone silent: node-redis waits on a socket without a bound, and a connection a
 * NAT, firewall or frozen machine dropped without FIN or RST never fails by itself (the kernel gives it up after
 * minutes), so every command meets the command timeout although the server answers new connections. A socket silent
 * for `socketTimeout` is closed (node-redis then reconnects); an idle healthy one is pinged twice as often, so it never
 * falls silent. Never less than twice the command timeout: a reply may take that long (a revocation's WAIT is silent
 * that long), nor than the connect timeout.
 */
export function silenceBound(settings: NodeSettings): { readonly socketTimeout: number; readonly pingInterval: number } {
  const socketTimeout = Math.min(Math.max(settings.connectTimeoutMs, 2 * settings.commandTimeoutMs), MAX_TIMER_MS);
  return { socketTimeout, pingInterval: Math.max(1, Math.floor(socketTimeout / 2)) };
}

/**
 * node-redis's own 5 s default timeout makes an AbortSignal.timeout() per command (measured: ~5 % of a proxied
 * request with the limiter on); the store sets the deadline that matters, so it is off everywhere.
 */
export const NO_CLIENT_TIMEOUT = { timeout: 0 } as const;

/**
 * Starts `connect` in the background and retries it with backoff while it rejects (a cluster or Sentinel client
 * gives up its first discovery when no seed answers; a single-server client reconnects by itself and never
 * rejects here). Stops once `stopped()` turns true.
 */
export function connectInBackground(
  connect: () => Promise<unknown>,
  onError: (err: unknown) => void,
  stopped: () => boolean,
  maxDelayMs: number,
): void {
  const delay = backoff(maxDelayMs);
  const attempt = (retries: number): void => {
    connect().catch((err: unknown) => {
      onError(err);
      if (stopped()) return;
      setTimeout(() => {
        if (!stopped()) attempt(retries + 1);
      }, delay(retries)).unref();
    });
  };
  attempt(0);
}

/**
 * A single Redis server (config `redis.url`). A link gone silent is given up and a new connection opened: the
 * socket timeout (silenceBound) alone cannot tell, as every command written counts as activity on the socket. So
 * when a command meets the command timeout and nothing came back on the connection (reply, error reply or ping) for
 * silenceBound's socketTimeout, the client is replaced; commands fail fast while the new one connects.
 */
export function singleServer(url: string, settings: NodeSettings): RedisConnection {
  const node = nodeClientOptions(settings);
  const { socketTimeout: silentMs, pingInterval } = silenceBound(settings);
  let onError: (err: unknown) => void = () => undefined;
  let closed = false;
  let lastHeard = performance.now();
  let silenceCheckQueued = false;
  const heard = (): void => {
    lastHeard = performance.now();
  };
  const open = () => {
    const opened = createClient({ url, ...node, socket: { ...node.socket, socketTimeout: silentMs }, pingInterval, commandOptions: NO_CLIENT_TIMEOUT });
    // node-redis throws an unhandled 'error' event (and so crashes the process) without a listener; a replaced
    // client keeps it, but its errors are no longer passed on: they are the destroy's own (its stuck ping's
    // DisconnectsClientError), and would take the place of the SilentConnectionError that says why it went.
    opened.on('error', (err: unknown) => {
      if (opened === client) onError(err);
    });
    opened.on('ping-interval', heard);
    opened.on('ready', heard);
    return opened;
  };
  let client = open();
  const connect = (c: typeof client): void =>
    connectInBackground(() => c.connect(), (err) => onError(err), () => closed || c !== client, settings.maxReconnectDelayMs);
  let lastReplicaSwitch = -Infinity;
  /** The connection opened to take the place of one that reached a replica, until it is ready (leaveReplica). */
  let replacement: typeof client | undefined;
  const dropReplacement = (): void => {
    const pending = replacement;
    replacement = undefined;
    if (pending !== undefined) destroyClient(pending);
  };
  /**
   * The server behind this connection answered as a replica (READONLY, MASTERDOWN): a failover made without Sentinel
   * (a managed Redis, a virtual IP or DNS name moved to the promoted node) demotes the old master and keeps our
   * connection to it open, so every write failed for as long as the gateway ran, although the URL now led to the new
   * master. A new connection (the name resolved again) is opened, and takes the old one's place once it is ready; the
   * old one is then closed once the commands on it have their replies. Until then the old one serves: a replica still
   * answers reads (the revocation checks), and with no offline queue every command sent while no connection was
   * ready failed at once (auth's on_store_error deny answered 503 for the handshake's length, once a second under a
   * URL naming a replica). At most one replacement at a time, started at most once per REPLICA_RECONNECT_MS: a URL
   * that names a replica for good costs one connection a second, not one per command.
   */
  const leaveReplica = (): void => {
    const now = performance.now();
    if (closed || replacement !== undefined || now - lastReplicaSwitch < REPLICA_RECONNECT_MS) return;
    lastReplicaSwitch = now;
    const next = open();
    replacement = next;
    next.once('ready', () => {
      if (closed || replacement !== next) return; // given up meanwhile (close, a silent link's replacement)
      replacement = undefined;
      const replica = client;
      client = next;
      heard();
      // Counted from here too: a READONLY reply the old connection still had in flight says nothing of this one.
      lastReplicaSwitch = performance.now();
      if (replica.isReady) replica.close().catch(() => destroyClient(replica));
      else destroyClient(replica);
    });
    // Connection errors while it is being opened are its own: the old connection still serves, and its errors are the
    // ones passed on (open()'s listener). node-redis retries by itself until it is ready or destroyed.
    connectInBackground(() => next.connect(), () => undefined, () => closed || replacement !== next, settings.maxReconnectDelayMs);
  };
  return {
    send: (_key, args) => {
      const sentOn = client;
      return sentOn.sendCommand([...args]).then(
        (reply) => {
          heard();
          return reply;
        },
        (err: unknown) => {
          if (err instanceof Error && isErrorReply(err)) {
            heard();
            // Only the connection in use: a reply from one already replaced tells nothing of its successor.
            if (sentOn === client && isReplicaReply(err)) leaveReplica();
          }
          throw err;
        },
      );
    },
    commandTimedOut() {
      // Decided once this turn of the event loop has read what the socket already holds: in a gateway whose own loop
      // stalled past the bound (a long synchronous task, a GC pause, a paused process), the overdue command timer runs
      // before the replies that arrived meanwhile are read, and a healthy connection looked silent.
      if (closed || silenceCheckQueued) return;
      silenceCheckQueued = true;
      setImmediate(() => {
        silenceCheckQueued = false;
        if (closed || !client.isReady || performance.now() - lastHeard < silentMs) return;
        const silent = client;
        dropReplacement(); // the new connection below resolves the name anew too
        client = open();
        heard();
        connect(client);
        silent.destroy();
        onError(new SilentConnectionError(silentMs));
      });
    },
    get isReady() {
      return client.isReady;
    },
    start(errors) {
      onError = errors;
      connect(client);
    },
    async close() {
      closed = true;
      dropReplacement(); // nothing was ever sent on it
      if (client.isOpen) await client.close();
    },
    destroy() {
      closed = true;
      dropReplacement();
      const current = client;
      current.destroy();
      // node-redis 6.3 keeps a socket that was still being opened when destroy() ran: it finds no socket to end, and
      // the connect then goes on to 'ready' and stays open. Closing a store before Redis answered (a CLI command that
      // refused its target before any Redis write) left the process running for good. End that socket once it opens.
      if (!current.isReady) current.once('connect', () => current.destroy());
    },
  };
}

/** Ends a client now, whatever state it is in (a destroy of one already closed throws nothing we need). */
export function destroyClient(client: { destroy(): void; isReady: boolean; once(event: 'connect', listener: () => void): unknown }): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
  // As RedisConnection.destroy below: node-redis keeps a socket still being opened when destroy() ran.
  if (!client.isReady) client.once('connect', () => client.destroy());
}

/** How often a single server's connection may be replaced because it reached a replica (singleServer). */
const REPLICA_RECONNECT_MS = 1_000;
/**
 * An error reply only a replica gives: READONLY (a write), MASTERDOWN (anything, with replica-serve-stale-data no).
 * Redis 7 passes a script's error on with its own code; Redis 6 wrapped it ("ERR Error running script ...: -READONLY").
 */
const REPLICA_REPLY = /^(?:READONLY|MASTERDOWN) |: -(?:READONLY|MASTERDOWN) /;

/** An error reply only a replica gives (REPLICA_REPLY): the node written to is no master. */
export function isReplicaReply(err: unknown): boolean {
  return err instanceof Error && REPLICA_REPLY.test(err.message);
}

/** A connection given up because nothing came back on it for `silentMs` while commands waited (singleServer). */
export class SilentConnectionError extends Error {
  constructor(silentMs: number) {
    super(`no reply on the connection for ${silentMs} ms`);
    this.name = 'SilentConnectionError';
  }
}
