// Redis KvStore (node-redis): one Lua script per decision, bounded command time, background reconnects.
import { createClient, type RedisClientType } from 'redis';
import { describeCause } from '../errors.js';
import { KvUnavailableError, type BucketRule, type KvStore, type TakeResult } from './kv-store.js';
import { TAKE_SCRIPT, TAKE_SCRIPT_SHA } from './redis-script.js';

/** Options of the Redis store. */
export interface RedisKvOptions {
  /** redis:// or rediss:// URL (config `redis.url`). */
  readonly url: string;
  /** Longest wait for any one command (config `redis.command_timeout`). Default 500 ms. */
  readonly commandTimeoutMs?: number;
  /** Prepended to every key, so several gateways (or test runs) can share one Redis. Default "portcullis:". */
  readonly keyPrefix?: string;
  /** Longest wait for a TCP connect before the next attempt. Default 2 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Commands waiting for a stalled Redis before new ones fail immediately. Default 10 000. */
  readonly maxPendingCommands?: number;
  /** Upper bound of the reconnect backoff. Default 2 000 ms. */
  readonly maxReconnectDelayMs?: number;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const DEFAULT_PREFIX = 'portcullis:';

/** The Redis store. Construct with createRedisKvStore; it connects in the background. */
export class RedisKvStore implements KvStore {
  readonly #client: RedisClientType;
  readonly #bucketPrefix: string;
  readonly #revokedPrefix: string;
  readonly #subjectPrefix: string;
  readonly #timeoutMs: number;
  #lastError: unknown = undefined;
  #closed = false;

  constructor(options: RedisKvOptions) {
    const commandTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const maxDelay = options.maxReconnectDelayMs ?? 2_000;
    const prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    this.#bucketPrefix = `${prefix}rl:`;
    this.#revokedPrefix = `${prefix}revoked:`;
    this.#subjectPrefix = `${prefix}revoked-subject:`;
    this.#timeoutMs = commandTimeout;
    this.#client = createClient({
      url: options.url,
      // Fail fast while disconnected instead of queueing commands until Redis returns.
      disableOfflineQueue: true,
      // Bounds memory while Redis is stalled: past this many pending commands, new ones fail at once.
      commandsQueueMaxLength: options.maxPendingCommands ?? 10_000,
      // node-redis's own 5 s default timeout makes an AbortSignal.timeout() per command (measured: ~5 % of a
      // proxied request with the limiter on); #command below sets the deadline that matters, so it is off.
      commandOptions: { timeout: 0 },
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 2_000,
        // Never give up: exponential backoff from 50 ms up to maxDelay, with jitter so gateways do not reconnect in step.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
      },
    }) as RedisClientType;
    // node-redis throws an unhandled 'error' event (and so crashes the process) without a listener. Connection
    // errors are expected during an outage; callers see them as KvUnavailableError, and the limiter logs once.
    this.#client.on('error', (err: unknown) => {
      this.#lastError = err;
    });
    // Connect in the background: connect() only settles once Redis answers, so awaiting it would block start-up
    // on a dead Redis. Until then every command fails fast (offline queue disabled).
    this.#client.connect().catch((err: unknown) => {
      this.#lastError = err;
    });
  }

  /** One EVALSHA round trip; falls back to EVAL (which also caches the script) after a Redis restart wiped it. */
  async take(key: string, rule: BucketRule): Promise<TakeResult> {
    const fullKey = this.#bucketPrefix + key;
    const capacity = String(rule.capacity);
    const rate = String(rule.refillPerSecond);
    let reply: unknown;
    try {
      reply = await this.#command(['EVALSHA', TAKE_SCRIPT_SHA, '1', fullKey, capacity, rate]);
    } catch (err) {
      if (!(err instanceof KvUnavailableError && isNoScript(err.cause))) throw err;
      reply = await this.#command(['EVAL', TAKE_SCRIPT, '1', fullKey, capacity, rate]);
    }
    return parseTakeReply(reply);
  }

  async revoke(tokenId: string, expiresAtMs: number): Promise<void> {
    const ttl = Math.ceil(expiresAtMs - Date.now());
    if (ttl <= 0) return; // already expired: nothing to remember
    await this.#command(['SET', this.#revokedPrefix + tokenId, '1', 'PX', String(ttl)]);
  }

  async isRevoked(tokenId: string, subject?: string, issuedAtMs = 0): Promise<boolean> {
    if (subject === undefined) return (await this.#command(['EXISTS', this.#revokedPrefix + tokenId])) === 1;
    // One round trip for both questions: this token, and every token of its subject.
    const reply = await this.#command(['MGET', this.#revokedPrefix + tokenId, this.#subjectPrefix + subject]);
    if (!Array.isArray(reply)) throw new KvUnavailableError({ cause: new TypeError('unexpected MGET reply') });
    const [token, subjectAt] = reply as [unknown, unknown];
    if (token !== null && token !== undefined) return true;
    return subjectAt !== null && subjectAt !== undefined && issuedAtMs <= Number(String(subjectAt));
  }

  async revokeSubject(subject: string, revokedAtMs: number, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    await this.#command([
      'EVAL',
      KEEP_LATEST_SCRIPT,
      '1',
      this.#subjectPrefix + subject,
      String(Math.trunc(revokedAtMs)),
      String(Math.ceil(ttlMs)),
    ]);
  }

  async ping(): Promise<void> {
    await this.#command(['PING']);
  }

  /** Stops reconnecting and closes the connection; waits at most the command timeout for in-flight commands. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client;
    if (!client.isReady) {
      client.destroy();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#timeoutMs);
    });
    try {
      const outcome = await Promise.race([client.close().then(() => 'closed' as const), timedOut]);
      if (outcome === 'timeout') client.destroy();
    } catch {
      client.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  /** True while connected (for /status); commands may still time out on a stalled server. */
  get connected(): boolean {
    return this.#client.isReady;
  }

  /** A short, secret-free description of the last connection error (class and code), or undefined. */
  get lastError(): string | undefined {
    return describeCause(this.#lastError);
  }

  /**
   * Sends one command, bounded by the command timeout. node-redis's own `timeout` option only covers the time a
   * command waits to be written; a command already on the wire to a stalled server would wait forever, hence this
   * deadline. A late reply to a timed-out command is matched to it in order and dropped, so replies never shift.
   */
  #command(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new KvUnavailableError({ cause: new CommandTimeoutError() })), this.#timeoutMs);
      this.#client.sendCommand(args).then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(new KvUnavailableError({ cause: err }));
        },
      );
    });
  }
}

/** Sets KEYS[1] to ARGV[1] with TTL ARGV[2] ms unless it already holds a later time (replays never lower it). */
const KEEP_LATEST_SCRIPT = `local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** The cause of a KvUnavailableError when Redis did not answer within the command timeout. */
export class CommandTimeoutError extends Error {
  constructor() {
    super('redis command timed out');
    this.name = 'CommandTimeoutError';
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** Checks the script's reply shape: four integers. Anything else means a foreign script or server, so unavailable. */
function parseTakeReply(reply: unknown): TakeResult {
  if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((v) => typeof v === 'number')) {
    throw new KvUnavailableError({ cause: new TypeError('unexpected reply from the rate-limit script') });
  }
  const [allowed, remaining, retryAfterMs, resetMs] = reply as [number, number, number, number];
  return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
}

/**
 * Creates the Redis store; called once by the composition root when `redis.url` is set. Returns at once and
 * connects in the background (a dead Redis neither crashes nor blocks start-up); `ping()` tells when it answers.
 */
export function createRedisKvStore(options: RedisKvOptions): RedisKvStore {
  return new RedisKvStore(options);
}
