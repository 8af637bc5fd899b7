// KvStore: the shared state of the gateway (rate-limit buckets, access-token revocations). Adapters: memory and Redis.

/** A token bucket: holds at most `capacity` tokens, refilled continuously at `refillPerSecond`. */
export interface BucketRule {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** One rate-limit decision. */
export interface TakeResult {
  readonly allowed: boolean;
  /** Whole tokens left after this decision. */
  readonly remaining: number;
  /** When refused: milliseconds until one token is available. 0 when allowed. */
  readonly retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  readonly resetMs: number;
}

/** The store could not answer (Redis down or too slow); callers apply their on_store_error policy. */
export class KvUnavailableError extends Error {
  /**
   * The store's most recent connection error, as "Class(CODE)" (e.g. "Error(ECONNREFUSED)", "SimpleError(WRONGPASS)"),
   * when one happened within the reconnect period: the cause of a failed command is often only "the client is
   * offline", which says nothing of why. Undefined for the memory store and while the connection is sound.
   */
  readonly connection: string | undefined;

  constructor(options?: { cause?: unknown; connection?: string | undefined }) {
    super('key-value store unavailable', options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KvUnavailableError';
    this.connection = options?.connection;
  }
}

/** `increment` found a value that is not an integer (set by `setValue`). Not an outage. */
export class KvValueError extends Error {
  constructor() {
    super('value is not an integer');
    this.name = 'KvValueError';
  }
}

/**
 * Shared gateway state. Each method is atomic on its own: `take` reads, refills and decrements a bucket as one step
 * (one Lua script in Redis), so concurrent callers in any number of processes never both spend the last token.
 * Failures throw KvUnavailableError within a bounded time; nothing hangs on a dead server.
 */
export interface KvStore {
  /** Takes one token from bucket `key` (created full). Its state expires once the bucket would be full again. */
  take(key: string, rule: BucketRule): TakeResult | Promise<TakeResult>;
  /**
   * Gives back one token to bucket `key` (never above `rule`'s capacity): the token an allowed `take` spent for a
   * decision a later step undid. Atomic like `take`; a bucket that is absent (full) stays so. Optional: a store
   * without it keeps the token spent.
   */
  refund?(key: string, rule: BucketRule): void | Promise<void>;
  /**
   * What `take` would decide for bucket `key` now, without spending a token or writing anything: a look at a bucket
   * that only some outcomes spend (the API-key read bucket: only keys the store does not find valid). A take given
   * back at once (`refund`) is no substitute on a remote store: between the two round trips the token is held, and
   * concurrent looks find the bucket emptied by each other. Optional: a caller without it takes and refunds.
   */
  peek?(key: string, rule: BucketRule): TakeResult | Promise<TakeResult>;
  /**
   * The rules the limiter of `scope` (a policy) takes under from now on (its start, a reload). A store that drops
   * buckets once they are full (the memory store's sweep) judges the buckets written before under rules that changed
   * for their scope, so a reload that slows a rule never hands a client drained under the old one a fresh burst, even
   * before its first take under the new rule. Rules a reload left as they were change nothing (else every reload kept
   * every bucket until full under the slowest rule of all). Optional: Redis cannot know the next rule and keeps each
   * key until full under the rule of its last take.
   */
  expectRules?(scope: string, rules: readonly BucketRule[]): void;
  /**
   * Marks access token `tokenId` revoked until `expiresAtMs` (epoch ms), after which the entry disappears. Redis waits
   * for a replica to confirm it and counts an unconfirmed one, unless `replay` (a revocation written before, applied
   * again from the change log: every gateway replays each one, so it would be waited for and counted once per gateway).
   */
  revoke(tokenId: string, expiresAtMs: number, replay?: boolean): Promise<void>;
  /**
   * True when `tokenId` was revoked and has not yet expired, or, when `subject` is given, when the subject's
   * revocations (revokeSubject) refuse a token issued at `issuedAtMs` under token generation `generation`: below the
   * stored generation, or, for a token without one (issued before generations existed) or against a revocation
   * written without one, issued at or before the stored time (see subject-revocation.ts). One round trip in Redis:
   * one MGET on a single server or Sentinel, two commands sent together on a Cluster.
   */
  isRevoked(tokenId: string, subject?: string, issuedAtMs?: number, generation?: number): boolean | Promise<boolean>;
  /**
   * Revokes every credential of `subject` (a user) issued under a token generation below `generation`, and every one
   * without a generation issued at or before `revokedAtMs` (epoch ms), for `ttlMs` (at least as long as such a
   * credential can still be accepted). Neither is ever lowered: a call with an earlier time or a lower generation
   * than the ones stored (a replay of the change log) keeps them. Without `generation` only the time is written (a
   * revocation whose generation is unknown: such a time then applies to every token, see subject-revocation.ts).
   */
  revokeSubject(subject: string, revokedAtMs: number, ttlMs: number, generation?: number): Promise<void>;
  /**
   * Plain values (the plugins' store, see src/plugins/store.ts), in a keyspace of their own that never meets the
   * buckets or the revocations. The value of `key`, or undefined when it is absent or expired.
   */
  getValue(key: string): Promise<string | undefined>;
  /** Stores `value` under `key`, replacing any value and expiry; it expires after `ttlMs` (none when omitted). */
  setValue(key: string, value: string, ttlMs?: number): Promise<void>;
  /**
   * Adds 1 to the integer at `key` (absent counts as 0) and returns the new value, atomically across processes.
   * A key without an expiry (a new counter) gets `ttlMs`; later increments keep the expiry, so a counter's window
   * starts at its first increment. A value that is not an integer throws KvValueError.
   */
  increment(key: string, ttlMs: number): Promise<number>;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  /**
   * Readiness (/ready): resolves when the store can serve what the gateway asks of it, a write included, not only
   * when it answers (a Redis replica or one at maxmemory answers PING and refuses every write). Optional: a store
   * without it is ready when `ping` resolves.
   */
  ready?(): Promise<void>;
  /**
   * True when the data the gateway wrote may have been lost since the previous call (a Redis restarted without
   * persistence, FLUSHALL, a failover to a replica that had never synced): a marker the call writes was missing, or
   * another store (gateway, worker) wrote it again since this one's previous call, so the revocations must be written
   * again (identity/change-poller.ts). The first call says true when the marker was never written. Optional: a store
   * that loses nothing while the process runs (memory) has none.
   */
  dataLost?(): Promise<boolean>;
  /**
   * The server's eviction policy when it may evict the gateway's keys to make room (a `maxmemory` set and a
   * `maxmemory-policy` other than noeviction), else undefined. Revocations and buckets carry an expiry, so a volatile-*
   * policy evicts them first, the marker (no expiry) never: a logout evicted is accepted again, and dataLost cannot
   * tell. Optional: a store that evicts nothing (memory) has none.
   */
  evictionPolicy?(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** KvStore.peek, or on a store without it a take given back at once (which holds the token meanwhile). */
export function peekBucket(store: KvStore, key: string, rule: BucketRule): TakeResult | Promise<TakeResult> {
  if (store.peek !== undefined) return store.peek(key, rule);
  const taken = store.take(key, rule);
  const giveBack = async (result: TakeResult): Promise<TakeResult> => {
    if (result.allowed) await store.refund?.(key, rule);
    return result;
  };
  return taken instanceof Promise ? taken.then(giveBack) : giveBack(taken);
}
