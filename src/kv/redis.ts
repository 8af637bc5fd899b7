// Redis KvStore (node-redis) over one server, a Redis Cluster or Sentinel: one Lua script per decision, bounded
// command time, background reconnects, and revocations confirmed by a replica (WAIT) where one is connected.
import { randomUUID } from 'node:crypto';
import { describeKvError } from './describe.js';
import { KvUnavailableError, KvValueError, type BucketRule, type KvStore, type TakeResult } from './kv-store.js';
import {
  INCREMENT_SCRIPT,
  INCREMENT_SCRIPT_SHA,
  READY_SCRIPT,
  READY_SCRIPT_SHA,
  REFUND_SCRIPT,
  REFUND_SCRIPT_SHA,
  TAKE_SCRIPT,
  TAKE_SCRIPT_SHA,
} from './redis-script.js';
import { bucketKey, keptMarkerKey, legacyRevokedKey, revokedKey, subjectGenerationKey, subjectRevokedKey, valueKey } from './redis-keys.js';
import { parseGenerationValue, parseTimeValue, refusesToken } from './subject-revocation.js';
import { singleServer, type NodeSettings, type RedisConnection } from './redis-connection.js';
import { redisCluster } from './redis-cluster.js';
import { redisSentinel, type SentinelTarget } from './redis-sentinel.js';
import { MAX_TIMER_MS } from '../config/duration.js';

/** Options of the Redis store. Exactly one of `url`, `cluster` and `sentinel` names the deployment. */
export interface RedisKvOptions {
  /** redis:// or rediss:// URL of one server (config `redis.url`). */
  readonly url?: string;
  /** Seed node URLs of a Redis Cluster (config `redis.cluster`). */
  readonly cluster?: readonly string[];
  /** A Sentinel-managed master (config `redis.sentinel`). */
  readonly sentinel?: SentinelTarget;
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
  /** Called when a revocation was written but no replica confirmed it (see `revoke`); cheap, never throws. */
  readonly onUnreplicatedRevocation?: () => void;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const DEFAULT_PREFIX = 'portcullis:';

/**
 * A take's deadline is rounded up to this many ms, so its argument string is made once per step rather than once
 * per request (the hot path allocates nothing new for it); rounding up only ever lets a take run a little later.
 */
const DEADLINE_STEP_MS = 16;
/**
 * How long a clock sample counts (see #observeRedisClock). Long enough that the best of the samples has little
 * reply latency in it; short enough that a Redis clock stepped back is followed within two windows.
 */
const CLOCK_WINDOW_MS = 10_000;

/** The readiness probe's key (see `ready`), of the buckets' shape: no limiter key starts with '!'. */
const READINESS_BUCKET = '!ready';

/** Which deployment a store talks to. */
export type RedisTopology = 'single' | 'cluster' | 'sentinel';

/** Builds one connection for the deployment the options name. */
function connect(options: RedisKvOptions, settings: NodeSettings): RedisConnection {
  if (options.cluster !== undefined) return redisCluster(options.cluster, settings);
  if (options.sentinel !== undefined) return redisSentinel(options.sentinel, settings);
  if (options.url !== undefined) return singleServer(options.url, settings);
  throw new TypeError('RedisKvOptions needs url, cluster or sentinel');
}

/** The Redis store. Construct with createRedisKvStore; it connects in the background. */
export class RedisKvStore implements KvStore {
  /** Rate-limit decisions and revocation checks: the hot path, pipelined on one connection per node. */
  readonly #main: RedisConnection;
  /**
   * Revocations: a connection of their own, because WAIT blocks its connection until a replica answers (up to the
   * command timeout), and WAIT counts the writes of its own connection, so the SET must be sent on it too. Opened
   * at the first logout: most gateways serve far more revocation checks than revocations.
   */
  #durable: RedisConnection | undefined;
  readonly #open: () => RedisConnection;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #topology: RedisTopology;
  readonly #onUnreplicated: () => void;
  #lastError: unknown = undefined;
  /** describeKvError(#lastError), made once per connection error (not per failed command) and when it happened. */
  #lastErrorText: string | undefined = undefined;
  /** performance.now() time (a wall clock stepped back kept an old error "recent" for as long as the step). */
  #lastErrorAt = 0;
  /** How long a connection error describes the failures after it: one reconnect cycle (connect timeout + backoff). */
  readonly #connectionErrorMs: number;
  /**
   * Redis's clock against ours (performance.now()): the best (highest) `redisNowMs - receivedAt` of the take replies
   * of this window and of the previous one. Every sample is low by the reply's travel and our event-loop delay, never
   * high, so the highest is the closest; with several servers (a cluster) the one whose clock is furthest ahead wins,
   * which errs towards later deadlines, never towards refusing a take the gateway still waits for.
   */
  #clockOffset = -Infinity;
  #clockOffsetPrevious = -Infinity;
  #clockWindowEnds = 0;
  /** The last deadline sent and its string, reused while the rounded deadline stays the same. */
  #deadline = 0;
  #deadlineArg = '0';
  #closed = false;
  /** The marker's value dataLost read last: undefined before its first answer, null when it read none. */
  #markerSeen: string | null | undefined = undefined;
  /** The marker server's replication ID dataLost read last (INFO replication's master_replid), if it could. */
  #replicationSeen: string | undefined = undefined;
  /**
   * True while the revocations this store reads cannot be trusted: dataLost read the marker missing (or another than
   * the one read last) on a server that refused to write it again (see dataLost). isRevoked answers nothing then.
   */
  #revocationsUnknown = false;

  constructor(options: RedisKvOptions) {
    const settings: NodeSettings = {
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
      maxPendingCommands: options.maxPendingCommands ?? 10_000,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 2_000,
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    };
    this.#topology = options.cluster !== undefined ? 'cluster' : options.sentinel !== undefined ? 'sentinel' : 'single';
    this.#prefix = options.keyPrefix ?? DEFAULT_PREFIX;
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#onUnreplicated = options.onUnreplicatedRevocation ?? (() => undefined);
    this.#connectionErrorMs = settings.connectTimeoutMs + settings.maxReconnectDelayMs + 1_000;
    // Connection errors are expected during an outage and repeat at every reconnect attempt: they are not logged
    // here but carried, described, on the KvUnavailableErrors of the commands that fail meanwhile, and the callers'
    // outage log (kv/outage.ts) writes them once per transition.
    const remember = (err: unknown): void => {
      this.#lastError = err;
      this.#lastErrorText = describeKvError(err);
      this.#lastErrorAt = performance.now();
    };
    // Connect in the background: a dead Redis neither crashes nor blocks start-up; until it answers, every
    // command fails fast (no offline queue).
    this.#open = () => {
      const connection = connect(options, settings);
      connection.start(remember);
      return connection;
    };
    this.#main = this.#open();
  }

  /**
   * The revocation connection, opened on first use; waits at most the command timeout for it to connect, while the
   * main connection is up: with that one down too, Redis is (the change poller's replay at a start-up with Redis down
   * waited for it once more, after untilConnected).
   */
  async #durableConnection(): Promise<RedisConnection> {
    this.#durable ??= this.#open();
    const connection = this.#durable;
    if (this.#main.isReady) await this.#untilReady(connection);
    return connection; // still not ready: the SET below fails fast with KvUnavailableError
  }

  /**
   * Waits at most the command timeout for the first connection to be up (start-up): the gateway's first looks at
   * Redis (the change poller's marker, the first requests' takes) otherwise fail fast on a connection still being
   * made, each counted in portcullis_store_errors_total on a healthy Redis. A Redis that is down delays start-up by
   * the command timeout, no more.
   */
  untilConnected(): Promise<void> {
    return this.#untilReady(this.#main);
  }

  async #untilReady(connection: RedisConnection): Promise<void> {
    // Monotonic: on the wall clock a step back during this wait (NTP, a restored snapshot) held a logout for as long
    // as the step, 10 minutes for a 10-minute step, instead of the command timeout.
    const deadline = performance.now() + this.#timeoutMs;
    while (!connection.isReady && !this.#closed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Which deployment this store talks to. */
  get topology(): RedisTopology {
    return this.#topology;
  }

  /**
   * One EVALSHA round trip; falls back to EVAL (which also caches the script) after a Redis restart wiped it. The
   * script refuses to spend a token once the command timeout has passed (see TAKE_SCRIPT): a take this store gave
   * up on never counts later, under either on_store_error policy.
   */
  take(key: string, rule: BucketRule): Promise<TakeResult> {
    return this.#runTakeScript(key, rule, this.#deadlineArgument(this.#timeoutMs), '0', performance.now(), this.#timeoutMs, true);
  }

  /**
   * A take the script refused as late although its reply came back within the command timeout: Redis ran it in
   * time for us, so our estimate of Redis's clock was behind, not the command late. The estimate's best sample can be
   * behind by this process's own stall before it read that reply (a slow first request at start-up, a GC pause), up
   * to the command timeout; then every take sent in that clock window came back late, and each was a store error on
   * a healthy Redis: let through uncounted under `on_store_error: allow`, a 503 under `deny`. This reply's sample
   * has raised the estimate (#runTakeScript), and the take runs once more within what is left of its timeout, its
   * deadline no later than when the gateway stops waiting for it.
   */
  async #takeAgain(key: string, rule: BucketRule, sentAt: number): Promise<TakeResult> {
    const leftMs = this.#timeoutMs - (performance.now() - sentAt);
    if (leftMs >= 1) return this.#runTakeScript(key, rule, this.#deadlineArgument(leftMs), '0', performance.now(), leftMs, false);
    throw new KvUnavailableError({ cause: new LateTakeError() });
  }

  /**
   * The take script's decision with nothing written (its look flag), in one round trip: no deadline, as a look
   * that runs late spends nothing.
   */
  peek(key: string, rule: BucketRule): Promise<TakeResult> {
    return this.#runTakeScript(key, rule, '0', '1', 0, this.#timeoutMs, false);
  }

  /**
   * TAKE_SCRIPT on bucket `key`, with its deadline and look arguments (ARGV[3], ARGV[4]), sent at `sentAt`
   * (performance.now()) and given `timeoutMs`. A take the script refused as run past its deadline is taken again
   * once when `retryLate` (#takeAgain; in here, so the hot path awaits no second promise), else a LateTakeError.
   */
  async #runTakeScript(
    key: string,
    rule: BucketRule,
    deadline: string,
    look: '0' | '1',
    sentAt: number,
    timeoutMs: number,
    retryLate: boolean,
  ): Promise<TakeResult> {
    const fullKey = bucketKey(this.#prefix, key);
    const command = ['EVALSHA', TAKE_SCRIPT_SHA, '1', fullKey, String(rule.capacity), String(rule.refillPerSecond), deadline, look];
    let reply: unknown;
    try {
      reply = await this.#command(this.#main, fullKey, command, timeoutMs);
    } catch (err) {
      if (!(err instanceof KvUnavailableError && isNoScript(err.cause))) throw err;
      command[0] = 'EVAL';
      command[1] = TAKE_SCRIPT;
      reply = await this.#command(this.#main, fullKey, command, timeoutMs);
    }
    const result = parseTakeReply(reply);
    // A late reply's own sample (read as it came back) raises an estimate that was behind: the retry's deadline is
    // then right. Never a bound from above (redisNowMs - sentAt): high by the command's trip, it put deadlines after
    // the gateway had given up, and Redis spent tokens for requests already answered as store errors.
    this.#observeRedisClock((reply as number[])[4] as number);
    if (result !== LATE) return result;
    if (retryLate) return this.#takeAgain(key, rule, sentAt);
    throw new KvUnavailableError({ cause: new LateTakeError() });
  }

  /** Gives back one token (REFUND_SCRIPT); EVALSHA with the EVAL fallback, as `take`. */
  async refund(key: string, rule: BucketRule): Promise<void> {
    const fullKey = bucketKey(this.#prefix, key);
    const args = ['1', fullKey, String(rule.capacity), String(rule.refillPerSecond)];
    try {
      await this.#command(this.#main, fullKey, ['EVALSHA', REFUND_SCRIPT_SHA, ...args]);
    } catch (err) {
      if (!(err instanceof KvUnavailableError && isNoScript(err.cause))) throw err;
      await this.#command(this.#main, fullKey, ['EVAL', REFUND_SCRIPT, ...args]);
    }
  }

  /**
   * ARGV[3] of the take script: the Redis time by which this command must run, i.e. now on Redis's clock (estimated)
   * plus the command's timeout, rounded up; "0" (no deadline) until a first reply has shown Redis's clock.
   */
  #deadlineArgument(timeoutMs: number): string {
    const offset = this.#clockOffset > this.#clockOffsetPrevious ? this.#clockOffset : this.#clockOffsetPrevious;
    if (offset === -Infinity) return '0';
    const deadline = Math.ceil((performance.now() + offset + timeoutMs) / DEADLINE_STEP_MS) * DEADLINE_STEP_MS;
    if (deadline !== this.#deadline) {
      this.#deadline = deadline;
      this.#deadlineArg = String(deadline);
    }
    return this.#deadlineArg;
  }

  /** Keeps the best clock sample of a take reply that arrived just now (see #clockOffset). */
  #observeRedisClock(redisNowMs: number): void {
    const now = performance.now();
    const sample = redisNowMs - now;
    if (now >= this.#clockWindowEnds) {
      this.#clockOffsetPrevious = this.#clockOffset;
      this.#clockOffset = sample;
      this.#clockWindowEnds = now + CLOCK_WINDOW_MS;
    } else if (sample > this.#clockOffset) {
      this.#clockOffset = sample;
    }
  }

  /**
   * Writes the revocation on the master, then, when the master reports a connected replica, waits (WAIT 1, bounded
   * by the command timeout) until one has it, so a failover right after an acknowledged logout keeps it. Without
   * a confirmation the revocation still stands on the master and this resolves anyway (the logout succeeds);
   * `onUnreplicatedRevocation` counts it. A single server with no replica is not counted: there is none to wait
   * for. Rejects (KvUnavailableError) only when the write itself failed.
   */
  async revoke(tokenId: string, expiresAtMs: number, replay = false): Promise<void> {
    const ttl = Math.ceil(expiresAtMs - Date.now());
    if (ttl <= 0) return; // already expired: nothing to remember
    const key = revokedKey(this.#prefix, tokenId);
    const durable = await this.#durableConnection();
    await this.#command(durable, key, ['SET', key, '1', 'PX', String(ttl)]);
    if (replay) return;
    let confirmed: 'replica' | 'no-replica' | 'unconfirmed';
    try {
      // Only after the SET: had it been redirected (MOVED after a failover), the client now routes ROLE and WAIT
      // to the master that took the write; pipelined, ROLE could go to the old owner.
      const role = await this.#command(durable, key, ['ROLE']);
      confirmed = connectedReplicas(role) > 0 ? await this.#waitForReplica(durable, key) : 'no-replica';
    } catch {
      confirmed = 'unconfirmed';
    }
    if (confirmed === 'unconfirmed' || (confirmed === 'no-replica' && this.#topology !== 'single')) this.#onUnreplicated();
  }

  /** WAIT 1 on the revocation's master; the server gives up after the command timeout and answers 0. */
  async #waitForReplica(durable: RedisConnection, key: string): Promise<'replica' | 'unconfirmed'> {
    const acknowledged = await this.#command(durable, key, ['WAIT', '1', String(this.#timeoutMs)], Math.min(this.#timeoutMs * 2, MAX_TIMER_MS));
    return typeof acknowledged === 'number' && acknowledged >= 1 ? 'replica' : 'unconfirmed';
  }

  async isRevoked(tokenId: string, subject?: string, issuedAtMs = 0, generation?: number): Promise<boolean> {
    // The dataset no longer holds what the gateway wrote and the server will not take it back (dataLost): an answer
    // read from it would be "not revoked" for every logout it lost. The caller applies on_store_error instead.
    if (this.#revocationsUnknown) throw new KvUnavailableError({ cause: new RevocationsUnknownError() });
    const key = revokedKey(this.#prefix, tokenId);
    // The subject's keys: its revocation time, and its generation for a token that carries one (a token issued
    // before generations existed is judged by time only). Both carry the subject as hash tag: one slot.
    const subjectKeys =
      subject === undefined
        ? []
        : generation === undefined
          ? [subjectRevokedKey(this.#prefix, subject)]
          : [subjectRevokedKey(this.#prefix, subject), subjectGenerationKey(this.#prefix, subject)];
    if (this.#topology !== 'cluster') {
      // One command on a single server or Sentinel: the token's key, the name it had before hash tags (a logout
      // made just before the upgrade), and the subject's. Every request of an authenticated route asks this; one
      // MGET instead of EXISTS + GET took about 2 % off the gateway's CPU a request (bench/ab.ts --against, redis:
      // 1.027x, spread 0.998-1.090). MGET reads a key of another type as absent, as EXISTS did not: the gateway only
      // writes strings under its prefix, so only another application sharing the prefix could tell.
      const keys = [key, legacyRevokedKey(this.#prefix, tokenId), ...subjectKeys];
      const values = await this.#command(this.#main, key, ['MGET', ...keys]);
      if (!Array.isArray(values) || values.length !== keys.length) {
        throw new KvUnavailableError({ cause: new TypeError('unexpected reply to MGET') });
      }
      if (values[0] !== null || values[1] !== null) return true;
      return subject !== undefined && subjectRefuses(values[2], values[3], issuedAtMs, generation);
    }
    // In a cluster the token and its subject (every token of a user or API key) are keys that may sit on different
    // slots: two commands (the subject's keys share a slot, so one MGET reads both), sent together, so still one
    // round trip of waiting. A cluster never had the old key name.
    if (subject === undefined) return existsReply(await this.#command(this.#main, key, ['EXISTS', key]));
    const sKey = subjectKeys[0]!;
    const [found, subjectValues] = await Promise.all([
      this.#command(this.#main, key, ['EXISTS', key]),
      this.#command(this.#main, sKey, ['MGET', ...subjectKeys]),
    ]);
    if (existsReply(found)) return true;
    if (!Array.isArray(subjectValues) || subjectValues.length !== subjectKeys.length) {
      throw new KvUnavailableError({ cause: new TypeError('unexpected reply to MGET') });
    }
    return subjectRefuses(subjectValues[0], subjectValues[1], issuedAtMs, generation);
  }

  /** One script on the subject's slot: the time and the generation, neither ever lowered (REVOKE_SUBJECT_SCRIPT). */
  async revokeSubject(subject: string, revokedAtMs: number, ttlMs: number, generation?: number): Promise<void> {
    if (ttlMs <= 0) return;
    const key = subjectRevokedKey(this.#prefix, subject);
    const generationKey = subjectGenerationKey(this.#prefix, subject);
    await this.#command(this.#main, key, [
      'EVAL',
      REVOKE_SUBJECT_SCRIPT,
      '2',
      key,
      generationKey,
      String(Math.trunc(revokedAtMs)),
      String(Math.ceil(ttlMs)),
      generation === undefined ? '' : String(generation),
    ]);
  }

  async getValue(key: string): Promise<string | undefined> {
    const fullKey = valueKey(this.#prefix, key);
    const reply = await this.#command(this.#main, fullKey, ['GET', fullKey]);
    return typeof reply === 'string' ? reply : undefined;
  }

  async setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    const fullKey = valueKey(this.#prefix, key);
    const args = ['SET', fullKey, value];
    if (ttlMs !== undefined) args.push('PX', String(Math.max(1, Math.ceil(ttlMs))));
    await this.#command(this.#main, fullKey, args);
  }

  /** One script: INCR, then PEXPIRE when the key has no expiry yet (a new counter). */
  async increment(key: string, ttlMs: number): Promise<number> {
    const fullKey = valueKey(this.#prefix, key);
    const args = ['1', fullKey, String(Math.max(1, Math.ceil(ttlMs)))];
    let reply: unknown;
    try {
      try {
        reply = await this.#command(this.#main, fullKey, ['EVALSHA', INCREMENT_SCRIPT_SHA, ...args]);
      } catch (err) {
        if (!(err instanceof KvUnavailableError && isNoScript(err.cause))) throw err;
        reply = await this.#command(this.#main, fullKey, ['EVAL', INCREMENT_SCRIPT, ...args]);
      }
    } catch (err) {
      if (err instanceof KvUnavailableError && err.cause instanceof Error && err.cause.message.startsWith('NOTINT')) {
        throw new KvValueError();
      }
      throw err;
    }
    if (typeof reply !== 'number') throw new KvUnavailableError({ cause: new TypeError('unexpected reply from the increment script') });
    return reply;
  }

  async ping(): Promise<void> {
    await this.#command(this.#main, undefined, ['PING']);
  }

  /**
   * Readiness. PING alone said ready while Redis refused every write: a server made a replica (REPLICAOF, a failover
   * done by hand) answers READONLY, one at maxmemory under noeviction answers OOM, an ACL that takes scripting away
   * answers NOPERM, and each answers PING (MISCONF, LOADING and BUSY refuse PING too). The limiter's decisions and the
   * revocations are scripts and writes, so the probe is a script that writes a key and deletes it (READY_SCRIPT): one
   * round trip like the PING it replaces, refused by the same failures, and nothing left behind. EVALSHA, with the
   * EVAL fallback after a Redis that lost its scripts, as `take`. A cluster keeps PING: its /ready is 200 while some
   * masters answer, and one probe key would tie it to the master of that key's slot.
   */
  async ready(): Promise<void> {
    if (this.#topology === 'cluster') return this.ping();
    const key = bucketKey(this.#prefix, READINESS_BUCKET);
    try {
      await this.#command(this.#main, key, ['EVALSHA', READY_SCRIPT_SHA, '1', key]);
    } catch (err) {
      if (!(err instanceof KvUnavailableError && isNoScript(err.cause))) throw err;
      await this.#command(this.#main, key, ['EVAL', READY_SCRIPT, '1', key]);
    }
  }

  /**
   * SET NX of a marker without expiry, with a value no write had before, and a GET of it sent with it (one round
   * trip, in order on the key's connection). 'OK' means it was absent, so whatever the gateway wrote before
   * (revocations above all) may be gone too: a Redis restarted without persistence, FLUSHALL or FLUSHDB, a failover
   * to a replica that had never synced. A server promoted in the place of the one read before is a loss too (see
   * below): a failover to a replica that was merely behind keeps the marker and loses the unconfirmed revocations. A value other than the one read last means another gateway (or worker) found
   * the loss first and wrote it again: true here too, so every running gateway writes the revocations again, not only
   * the one whose SET came first (that one may fail to: its user store out of reach, or it stops). Asked once a second
   * by the change poller. An eviction policy that evicts keys without expiry (allkeys-*) may evict the marker alone:
   * then the revocations are written again for nothing. On a cluster the marker lives on one master: another
   * master's loss is not seen.
   *
   * A server that refuses the SET but answers the GET (a replica: READONLY) may hold another dataset than the one the
   * gateway wrote: a server made a replica of another one (REPLICAOF, a failover tool pointed the wrong way) drops its
   * own data for that server's at the sync, and went on answering the revocation checks from it, so every logout it
   * lost was served again for as long as it stayed a replica (nothing could be written back). A marker read missing,
   * or another than the one read last, there makes the revocations unknown: isRevoked fails (KvUnavailableError,
   * cause RevocationsUnknownError: on_store_error) until the server takes the marker again and the call after the
   * one that said so finds it in place, i.e. once the change poller has written the revocations back. The same
   * marker read on such a server (a replica of the gateway's own data, OOM, MISCONF) changes nothing.
   */
  async dataLost(): Promise<boolean> {
    const key = keptMarkerKey(this.#prefix);
    const [set, got, replication] = await Promise.allSettled([
      // A new value at each write, so a marker written again is told from the one read before, whoever wrote both.
      this.#command(this.#main, key, ['SET', key, randomUUID(), 'NX']),
      this.#command(this.#main, key, ['GET', key]),
      this.#command(this.#main, key, ['INFO', 'replication']),
    ]);
    if (got.status === 'rejected') throw got.reason;
    const value = typeof got.value === 'string' ? got.value : null;
    const seen = this.#markerSeen;
    if (set.status === 'rejected') {
      // #markerSeen is kept: the loss is still to be found (and said) once the server takes the marker again.
      // With no marker read yet (a first start on this prefix whose first call failed, or came after writes were
      // refused), a missing one cannot be told from another dataset (a gateway started against a replica of an empty
      // server): unknown too, and the start-up's revocations could not be written there either. A marker present but
      // never read before is taken as the gateway's own (an established prefix on a server refusing writes).
      if (value === null || (typeof seen === 'string' && value !== seen)) this.#revocationsUnknown = true;
      else if (value === seen) this.#revocationsUnknown = false;
      throw set.reason;
    }
    this.#markerSeen = value;
    // A replica promoted in the master's place (a failover) takes a new replication ID and keeps the one it followed
    // as its second: it holds only what had reached it, so a revocation the master acknowledged and no replica
    // confirmed (WAIT gave up) is gone, while the marker, written long before, is still there. Read as a loss, so
    // the revocations are written again. Only that: a master also takes a new ID when its first replica attaches or
    // its backlog is freed, with nothing lost. INFO refused (an ACL) leaves the marker alone.
    const ids = replication.status === 'fulfilled' ? replicationIds(replication.value) : undefined;
    const promoted = ids !== undefined && this.#replicationSeen !== undefined && ids.id !== this.#replicationSeen && ids.previous === this.#replicationSeen;
    if (ids !== undefined) this.#replicationSeen = ids.id;
    const lost = set.value === 'OK' || (seen !== undefined && value !== seen) || promoted;
    if (!lost) this.#revocationsUnknown = false;
    return lost;
  }

  /**
   * INFO memory's `maxmemory` and `maxmemory_policy` (INFO, not CONFIG GET, which managed Redis services often rename
   * or forbid), on the marker's server: on a cluster that master stands for the rest, set alike in practice.
   */
  async evictionPolicy(): Promise<string | undefined> {
    const info = await this.#command(this.#main, keptMarkerKey(this.#prefix), ['INFO', 'memory']);
    if (typeof info !== 'string') return undefined;
    const maxmemory = /^maxmemory:(\d+)\s*$/m.exec(info)?.[1];
    const policy = /^maxmemory_policy:([a-z-]+)\s*$/m.exec(info)?.[1];
    if (maxmemory === undefined || policy === undefined || Number(maxmemory) === 0 || policy === 'noeviction') return undefined;
    return policy;
  }

  /** Stops reconnecting and closes the connections; waits at most the command timeout for in-flight commands. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const open = this.#durable === undefined ? [this.#main] : [this.#main, this.#durable];
    await Promise.all(open.map((c) => this.#closeOne(c)));
  }

  async #closeOne(connection: RedisConnection): Promise<void> {
    if (!connection.isReady) {
      connection.destroy();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#timeoutMs);
    });
    try {
      const outcome = await Promise.race([connection.close().then(() => 'closed' as const), timedOut]);
      if (outcome === 'timeout') connection.destroy();
    } catch {
      connection.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  /** True while connected (for /status); commands may still time out on a stalled server. */
  get connected(): boolean {
    return this.#main.isReady;
  }

  /** A short, secret-free description of the last connection error (class and code), or undefined. */
  get lastError(): string | undefined {
    return describeKvError(this.#lastError);
  }

  /** The last connection error's description while it is recent (one reconnect cycle), for KvUnavailableError. */
  #recentConnectionError(): string | undefined {
    return this.#lastErrorText !== undefined && performance.now() - this.#lastErrorAt < this.#connectionErrorMs ? this.#lastErrorText : undefined;
  }

  /**
   * Sends one command, bounded by the command timeout. node-redis's own `timeout` option only covers the time a
   * command waits to be written; a command already on the wire to a stalled server would wait forever, hence this
   * deadline. A late reply to a timed-out command is matched to it in order and dropped, so replies never shift.
   */
  #command(connection: RedisConnection, routingKey: string | undefined, args: string[], timeoutMs = this.#timeoutMs): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      let settled = false;
      const expire = (): void => {
        if (settled) return;
        // A timer this late means this process's own event loop stalled (a long synchronous task, a GC pause, a
        // paused process) for at least the command's whole deadline: the command may have been written only as the
        // stall ended, and its reply cannot be back yet, so the connection's silence is not judged on it (a healthy
        // one was given up: 1 of 2 full-suite runs, a loaded machine). A link really silent is found by the next
        // command whose timer runs on time.
        if (performance.now() - sentAt < 2 * timeoutMs) connection.commandTimedOut?.(routingKey);
        reject(new KvUnavailableError({ cause: new CommandTimeoutError(), connection: this.#recentConnectionError() }));
      };
      // Decided after this turn of the event loop has read what the sockets hold: after a stall, the overdue timer
      // runs (timers phase) before the poll phase reads a reply already waiting, and a command answered in time was
      // refused as timed out (4 of 5 takes behind a 700 ms stall at a 500 ms command timeout).
      const timer = setTimeout(() => setImmediate(expire), timeoutMs);
      connection.send(routingKey, args).then(
        (reply) => {
          settled = true;
          clearTimeout(timer);
          resolve(reply);
        },
        (err: unknown) => {
          settled = true;
          clearTimeout(timer);
          reject(new KvUnavailableError({ cause: err, connection: this.#recentConnectionError() }));
        },
      );
    });
  }
}

/**
 * A subject's revocation. KEYS[1]: its time, set to ARGV[1] with TTL ARGV[2] ms unless it already holds a later one
 * (the script the previous version runs on this key, so versions mixed in a rolling upgrade agree on it). KEYS[2]:
 * with a generation ARGV[3] (empty: none), "<highest generation>:<time it covers>", its TTL the longer of the one it
 * has and ARGV[2]: a replay never lowers the generation, and a revocation written later without one (by an earlier
 * version) shows as a time after the one stored with the generation (see subject-revocation.ts). The time it covers
 * is the later of ARGV[1] and the one stored there before, never KEYS[1]'s: a replay of an earlier change (a gateway
 * starting replays the change log, oldest first) must not cover a later time written without a generation, or the
 * sessions that revocation killed are accepted again. Numbers are formatted with %.0f: Lua's tostring would write an
 * epoch-ms time in exponent notation.
 */
const REVOKE_SUBJECT_SCRIPT = `local stored = tonumber(redis.call('GET', KEYS[1]) or '')
local at = tonumber(ARGV[1])
if stored and stored >= at then
  at = stored
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if ARGV[3] == '' then return 1 end
local generation = tonumber(ARGV[3])
local ttl = tonumber(ARGV[2])
local covered = tonumber(ARGV[1])
local previous = redis.call('GET', KEYS[2])
if previous then
  local highest, previousAt = string.match(previous, '^(%d+):(%-?%d+)$')
  highest = tonumber(highest)
  previousAt = tonumber(previousAt)
  if highest and highest > generation then generation = highest end
  if previousAt and previousAt > covered then covered = previousAt end
  local left = redis.call('PTTL', KEYS[2])
  if left > ttl then ttl = left end
end
redis.call('SET', KEYS[2], string.format('%.0f:%.0f', generation, covered), 'PX', string.format('%.0f', ttl))
return 1`;

/** The cause of a KvUnavailableError when Redis did not answer within the command timeout. */
export class CommandTimeoutError extends Error {
  constructor() {
    super('redis command timed out');
    this.name = 'CommandTimeoutError';
  }
}

/**
 * The cause of a KvUnavailableError when the take script ran after its deadline and spent nothing: the reply came in
 * time for us but the script judged by Redis's clock, and so did the one retry that follows with the clock estimate
 * raised (RedisKvStore.#takeAgain): a Redis clock stepped forward between the two, or no time left for the retry.
 */
export class LateTakeError extends Error {
  constructor() {
    super('rate-limit script ran after its deadline');
    this.name = 'LateTakeError';
  }
}

/**
 * The cause of a KvUnavailableError from isRevoked while the server holds another dataset than the gateway wrote and
 * refuses to have it written back (see RedisKvStore.dataLost).
 */
export class RevocationsUnknownError extends Error {
  constructor() {
    super('revocations lost on a server that refuses writes');
    this.name = 'RevocationsUnknownError';
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** EXISTS's answer; a reply that is not a count means a foreign server, so unavailable (as MGET's check above). */
function existsReply(reply: unknown): boolean {
  if (typeof reply !== 'number') throw new KvUnavailableError({ cause: new TypeError('unexpected reply to EXISTS') });
  return reply > 0;
}

/** True when a subject's keys (time, generation: their values, null when absent) refuse the token (refusesToken). */
function subjectRefuses(timeValue: unknown, generationValue: unknown, issuedAtMs: number, generation: number | undefined): boolean {
  return refusesToken({ at: parseTimeValue(timeValue), ...parseGenerationValue(generationValue) }, issuedAtMs, generation);
}

/** Replicas a ROLE reply lists as connected: ["master", offset, [[host, port, offset], …]]; 0 for anything else. */
function connectedReplicas(role: unknown): number {
  if (!Array.isArray(role) || role[0] !== 'master' || !Array.isArray(role[2])) return 0;
  return role[2].length;
}

/** parseTakeReply's answer for a take that ran after its deadline (allowed = -1): nothing was spent. */
const LATE: TakeResult = Object.freeze({ allowed: false, remaining: 0, retryAfterMs: 0, resetMs: 0 });

/**
 * Checks the script's reply shape: five integers (the fifth is Redis's clock). Anything else means a foreign script
 * or server, so unavailable.
 */
function parseTakeReply(reply: unknown): TakeResult {
  if (!Array.isArray(reply) || reply.length !== 5 || !reply.every((v) => typeof v === 'number')) {
    throw new KvUnavailableError({ cause: new TypeError('unexpected reply from the rate-limit script') });
  }
  const [allowed, remaining, retryAfterMs, resetMs] = reply as [number, number, number, number, number];
  if (allowed === -1) return LATE;
  return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
}

/**
 * Creates the Redis store; called once by the composition root when a Redis deployment is configured. Returns at
 * once and connects in the background (a dead Redis neither crashes nor blocks start-up); `ping()` tells when it
 * answers.
 */
export function createRedisKvStore(options: RedisKvOptions): RedisKvStore {
  return new RedisKvStore(options);
}

/**
 * INFO replication's `master_replid` (the replication history the server's dataset belongs to) and
 * `master_replid2` (the one it followed before a promotion; zeros otherwise).
 */
function replicationIds(info: unknown): { id: string; previous: string | undefined } | undefined {
  if (typeof info !== 'string') return undefined;
  const id = /^master_replid:([0-9a-f]+)\s*$/m.exec(info)?.[1];
  if (id === undefined) return undefined;
  return { id, previous: /^master_replid2:([0-9a-f]+)\s*$/m.exec(info)?.[1] };
}
