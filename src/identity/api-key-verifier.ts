// Checks a presented API key: a bounded cache keyed by the key's hash (no database round trip once seen), the
// revocation store on every request, and last-used times noted for a batched write.
import { KvUnavailableError, type KvStore } from '../kv/kv-store.js';
import type { ApiKeyRecord } from '../store/identity-types.js';
import { StoreUnavailableError, type UserStore } from '../store/user-store.js';
import { apiKeyId, hashApiKey } from './api-key-format.js';
import type { LastUsedRecorder } from './last-used.js';

/** The caller behind a valid API key; phases read it through the CONSUMER slot (auth/caller.ts). */
export interface Consumer {
  readonly id: string;
  readonly name: string;
}

/**
 * The result of a check: a consumer, or a refusal (unknown, malformed, expired or revoked: one answer). An `ok`
 * with `revocationError` is a key let through unchecked under `on_store_error: allow` (the revocation store failed);
 * the authenticate phase reports that error to the store's outage log, as it does a token's revocation check.
 */
export type ApiKeyCheck =
  | { readonly kind: 'ok'; readonly consumer: Consumer; readonly revocationError?: KvUnavailableError }
  | { readonly kind: 'invalid' };

/** The revocation-store subject of an API key. */
export function apiKeySubject(id: string): string {
  return `apikey:${id}`;
}

export interface ApiKeyVerifierOptions {
  readonly store: Pick<UserStore, 'findApiKeyByHash'>;
  readonly kv: Pick<KvStore, 'isRevoked'>;
  readonly lastUsed?: Pick<LastUsedRecorder, 'note'>;
  /**
   * `middleware.auth.on_store_error: allow`: a revocation store that cannot answer does not refuse the key (the
   * answer carries the error as `revocationError`); otherwise its KvUnavailableError is thrown.
   */
  readonly allowOnKvError?: boolean;
  /** Cached keys the store knows (valid, revoked or expired). Default 10 000. */
  readonly maxEntries?: number;
  /**
   * Cached unknown hashes, in a cache of their own: a flood of made-up keys only ever evicts other made-up keys,
   * never a real one (each real request would then go to the store). Default 1 000.
   */
  readonly maxMisses?: number;
  /**
   * How long a known key's cached record is trusted before the store is asked again, ms. Default 30 000. An unknown
   * key's answer is trusted for this or 30 000, whichever is less.
   */
  readonly ttlMs?: number;
  /** Wall clock, for tests: key expiry dates are judged on it. Default Date.now. */
  readonly now?: () => number;
  /**
   * Monotonic clock, for tests: the age of cached answers is measured on it (a wall clock stepped back by NTP or a
   * restored snapshot would keep them fresh for the step plus the TTL). Default performance.now.
   */
  readonly clock?: () => number;
}

interface Entry {
  /** undefined: no such key (negative entries stop a key repeated by a misconfigured client reaching the database). */
  readonly record: ApiKeyRecord | undefined;
  /** The monotonic clock's reading when the store was asked (ApiKeyVerifierOptions.clock). */
  readonly cachedAt: number;
  /** When the store last answered with this record: cachedAt, unless the entry was kept through an outage. */
  readonly readAt: number;
}

/**
 * A bounded cache evicting its oldest insertion first. Entries are re-inserted when re-read from the store, so a key in
 * use moves to the end at most every TTL.
 */
class BoundedCache {
  readonly #map = new Map<string, Entry>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(hash: string): Entry | undefined {
    return this.#map.get(hash);
  }

  set(hash: string, entry: Entry): void {
    this.#map.delete(hash); // re-inserted last: the Map's order is the eviction order
    if (this.#map.size >= this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
    this.#map.set(hash, entry);
  }

  delete(hash: string): void {
    this.#map.delete(hash);
  }

  entries(): IterableIterator<[string, Entry]> {
    return this.#map.entries();
  }

  get size(): number {
    return this.#map.size;
  }
}

const INVALID: ApiKeyCheck = { kind: 'invalid' };

/** The longest an unknown key's store answer is cached, whatever the known keys' TTL. */
const MISS_TTL_MS = 30_000;
/**
 * While the user store cannot answer, a known key's last record stands in for it for up to this many TTLs after the
 * store last answered (5 minutes at the default 30 s), and never longer than MAX_STALE_MS.
 */
const STALE_TTLS = 10;
const MAX_STALE_MS = 10 * 60_000;

/**
 * Built once per gateway. `check` answers synchronously for a cached key and a memory revocation store. A revoked
 * key is refused at once through the revocation store (every instance) and dropped here by `forget` (the change
 * poller, the admin API); the cache TTL bounds how long any other change takes to be seen.
 */
export class ApiKeyVerifier {
  readonly #o: ApiKeyVerifierOptions;
  /** Keys the store knows. */
  readonly #hits: BoundedCache;
  /** Hashes the store does not know: kept apart so that they never push a known key out. */
  readonly #misses: BoundedCache;
  /** The store reads under way, by hash (see #load). */
  readonly #reading = new Map<string, Promise<ApiKeyRecord | undefined>>();
  readonly #ttl: number;
  /** An unknown key's answer lasts no longer than this: a key the store gains (a replica catching up) is not refused long. */
  readonly #missTtl: number;
  /** How long after the store last answered for a key its record may stand in for the store (see #read). */
  readonly #staleMs: number;
  readonly #now: () => number;
  readonly #clock: () => number;

  constructor(options: ApiKeyVerifierOptions) {
    this.#o = options;
    this.#hits = new BoundedCache(options.maxEntries ?? 10_000);
    this.#misses = new BoundedCache(options.maxMisses ?? 1_000);
    this.#ttl = options.ttlMs ?? 30_000;
    this.#missTtl = Math.min(this.#ttl, MISS_TTL_MS);
    this.#staleMs = Math.min(STALE_TTLS * this.#ttl, MAX_STALE_MS);
    this.#now = options.now ?? Date.now;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Checks `key`; throws StoreUnavailableError / KvUnavailableError when a store cannot answer. */
  check(key: string): ApiKeyCheck | Promise<ApiKeyCheck> {
    if (apiKeyId(key) === undefined) return INVALID;
    const hash = hashApiKey(key);
    const now = this.#now();
    const entry = this.#cached(hash);
    if (entry !== undefined) return this.#decide(entry.record, now);
    return this.#load(hash, now);
  }

  /**
   * True when check(`key`) would ask the user store about a key it has never known: a well-formed key with no fresh
   * cached answer and no earlier record of the store's (a known key whose entry is only past its TTL is re-read
   * without question). The authenticate phase looks at the client's key-read bucket first for such a key, so a client
   * that has emptied it with made-up keys never reaches the store with more; a key in use by a neighbour behind the
   * same address is re-read every TTL whatever that client does.
   */
  needsStore(key: string): boolean {
    if (apiKeyId(key) === undefined) return false;
    const hash = hashApiKey(key);
    return this.#cached(hash) === undefined && this.#hits.get(hash) === undefined;
  }

  /** Drops every cached entry of key `id` (it was revoked). */
  forget(id: string): void {
    for (const [hash, entry] of this.#hits.entries()) if (entry.record?.id === id) this.#hits.delete(hash);
  }

  /** Cached entries (known and unknown keys), for tests. */
  get size(): number {
    return this.#hits.size + this.#misses.size;
  }

  /** The fresh cached answer for `hash`, if any. */
  #cached(hash: string): Entry | undefined {
    const hit = this.#hits.get(hash);
    const entry = hit ?? this.#misses.get(hash);
    const ttl = hit !== undefined ? this.#ttl : this.#missTtl;
    return entry !== undefined && this.#clock() - entry.cachedAt < ttl ? entry : undefined;
  }

  /**
   * One store read per hash at a time: every request that finds the key uncached (or its entry expired, every
   * `ttlMs` for a busy key) while a read runs waits for that read. Each used to send its own, so a busy key's burst
   * took every connection of the pool the logins share, and held them all while the store was slow.
   */
  #load(hash: string, now: number): Promise<ApiKeyCheck> {
    let read = this.#reading.get(hash);
    if (read === undefined) {
      read = this.#read(hash).finally(() => this.#reading.delete(hash));
      this.#reading.set(hash, read);
      return read.then((record) => this.#decide(record, now));
    }
    return read.then((record) => this.#decide(record, this.#now()));
  }

  async #read(hash: string): Promise<ApiKeyRecord | undefined> {
    const askedAt = this.#clock();
    let record: ApiKeyRecord | undefined;
    try {
      record = await this.#o.store.findApiKeyByHash(hash);
    } catch (err) {
      // A key the store answered for before, whose entry is only past its TTL: its last record answers while the
      // store cannot (as Kong's db_resurrect_ttl), for one more TTL before the store is asked again, and at most
      // #staleMs after the store last answered. Without it every known key was refused 503 once its entry aged out:
      // an outage longer than the TTL stopped all API-key traffic while bearer tokens went on. Bounded because a key
      // cannot be revoked while the store is down (the admin API and the CLI write the store first): a leaked key
      // outlives an outage by that much at most. Its expiry and the revocation store are judged as on a fresh record.
      const stale = this.#hits.get(hash);
      if (!(err instanceof StoreUnavailableError) || stale?.record === undefined || askedAt - stale.readAt >= this.#staleMs) throw err;
      // Fresh for one more TTL, but never past readAt + #staleMs: a use just before the bound must not extend it.
      this.#hits.set(hash, { record: stale.record, cachedAt: Math.min(askedAt, stale.readAt + this.#staleMs - this.#ttl), readAt: stale.readAt });
      return stale.record;
    }
    const entry = { record, cachedAt: askedAt, readAt: askedAt };
    // One cache per answer: a hash moves from one to the other only when the store's answer changed.
    if (record === undefined) {
      this.#hits.delete(hash);
      this.#misses.set(hash, entry);
    } else {
      this.#misses.delete(hash);
      this.#hits.set(hash, entry);
    }
    return record;
  }

  #decide(record: ApiKeyRecord | undefined, now: number): ApiKeyCheck | Promise<ApiKeyCheck> {
    if (record === undefined || record.revokedAt !== null) return INVALID;
    if (record.expiresAt !== null && record.expiresAt.getTime() <= now) return INVALID;
    const revoked = this.#o.kv.isRevoked(apiKeySubject(record.id));
    if (typeof revoked === 'boolean') return this.#accept(record, revoked);
    return revoked.then(
      (r) => this.#accept(record, r),
      (err: unknown) => {
        // Accepted, but not silently: the error goes with the answer, for the caller's outage log.
        if (this.#o.allowOnKvError === true && err instanceof KvUnavailableError) return this.#accept(record, false, err);
        throw err;
      },
    );
  }

  /**
   * Notes a use of the key behind `consumer` for its `last_used_at`: called by the authenticate phase once the whole
   * request is admitted, not by check(), since a token beside the key may still refuse it.
   */
  noteUse(consumer: Consumer): void {
    this.#o.lastUsed?.note(consumer.id, this.#now());
  }

  #accept(record: ApiKeyRecord, revoked: boolean, revocationError?: KvUnavailableError): ApiKeyCheck {
    if (revoked) return INVALID;
    const consumer = { id: record.id, name: record.name };
    return revocationError === undefined ? { kind: 'ok', consumer } : { kind: 'ok', consumer, revocationError };
  }
}
