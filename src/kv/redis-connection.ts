// One Redis deployment behind one small interface: a single server, a Redis Cluster or a Sentinel-managed master.
// The store (redis.ts) sends commands through it and never knows which topology answers.
import { createClient } from 'redis';

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

/** A single Redis server (config `redis.url`). */
export function singleServer(url: string, settings: NodeSettings): RedisConnection {
  const client = createClient({ url, ...nodeClientOptions(settings), commandOptions: NO_CLIENT_TIMEOUT });
  let closed = false;
  return {
    send: (_key, args) => client.sendCommand([...args]),
    get isReady() {
      return client.isReady;
    },
    start(onError) {
      // node-redis throws an unhandled 'error' event (and so crashes the process) without a listener.
      client.on('error', onError);
      connectInBackground(() => client.connect(), onError, () => closed, settings.maxReconnectDelayMs);
    },
    async close() {
      closed = true;
      if (client.isOpen) await client.close();
    },
    destroy() {
      closed = true;
      client.destroy();
      // node-redis 6.3 keeps a socket that was still being opened when destroy() ran: it finds no socket to end, and
      // the connect then goes on to 'ready' and stays open. Closing a store before Redis answered (a CLI command that
      // refused its target before any Redis write) left the process running for good. End that socket once it opens.
      if (!client.isReady) client.once('connect', () => client.destroy());
    },
  };
}
