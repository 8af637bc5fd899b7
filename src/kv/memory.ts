// In-process KvStore: exact within one process, synchronous, and bounded (idle buckets are swept, entries capped).
import { performance } from 'node:perf_hooks';
import { takeToken } from '../ratelimit/bucket.js';
import { BucketTable } from './bucket-table.js';
import { KvValueError, type BucketRule, type KvStore, type TakeResult } from './kv-store.js';

/** Options of the memory store; every field has a default. */
export interface MemoryKvOptions {
  /** How often buckets that are full again and expired revocations are dropped. Default 10 000 ms. */
  readonly sweepIntervalMs?: number;
  /**
   * Hard cap on live buckets, a safety net for floods from many addresses between sweeps. At the cap the oldest
   * bucket that is not refusing its client right now is dropped (its client's next request is then at most more
   * lenient); a bucket that is limiting someone is never dropped, so a flood of new keys cannot lift a limit in
   * force (such as a login bucket). Default 500 000 (about 50 MB of heap at ~95 bytes a bucket, key included, see bench/limiter.ts).
   */
  readonly maxBuckets?: number;
  /** Hard cap on plain values (plugins' store); at the cap the oldest-written value is dropped. Default 100 000. */
  readonly maxValues?: number;
  /** The clock in ms; monotonic performance.now() by default (tests may pass their own). */
  readonly now?: () => number;
}

const DEFAULT_SWEEP_MS = 10_000;
const DEFAULT_MAX_BUCKETS = 500_000;
const DEFAULT_MAX_VALUES = 100_000;

/** A plain value and when it expires (the store's clock; Infinity: never). */
interface StoredValue {
  readonly value: string;
  readonly expiresAt: number;
}
const SWEEP_CHUNK = 10_000;
/**
 * Buckets looked at per eviction. Limiting buckets met on the way are moved to the back, so the work per insert
 * stays constant. When every bucket looked at is limiting, the new bucket is not stored: its client is decided on a
 * fresh (full) bucket. Keeping 500 000 buckets empty at once takes far more requests per second than one gateway
 * serves, so that case is a theoretical one.
 */
const EVICTION_SCAN = 32;

/** The memory store; `sweep()` and the size getters are public so tests and benchmarks can observe the bounds. */
export class MemoryKvStore implements KvStore {
  readonly #buckets = new BucketTable();
  /** jti → expiry (epoch ms, as given by the caller). */
  readonly #revoked = new Map<string, number>();
  /** subject → { revoked-at, expiry } (epoch ms). */
  readonly #subjects = new Map<string, { at: number; expiresAt: number }>();
  readonly #values = new Map<string, StoredValue>();
  readonly #maxBuckets: number;
  readonly #maxValues: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** The timer's sweep in progress: it resumes this iterator a chunk at a time. */
  #sweeping: Iterator<[string, number]> | undefined;
  readonly #continueSweep = (): void => this.#sweepChunk();

  constructor(options: MemoryKvOptions = {}) {
    this.#maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    this.#maxValues = options.maxValues ?? DEFAULT_MAX_VALUES;
    this.#now = options.now ?? performance.now.bind(performance);
    this.#timer = setInterval(() => this.#startSweep(), options.sweepIntervalMs ?? DEFAULT_SWEEP_MS);
    // The sweep must never keep the process alive on its own.
    this.#timer.unref();
  }

  /** Synchronous: reads, refills and decrements in one step, so it is atomic within the process. */
  take(key: string, rule: BucketRule): TakeResult {
    const buckets = this.#buckets;
    const now = this.#now();
    const previous = buckets.get(key);
    const step = takeToken(previous !== undefined && previous.fullAtMs > now ? previous : undefined, rule, now);
    if (step.result.resetMs === 0) {
      if (previous !== undefined) buckets.delete(key);
    } else if (previous !== undefined || buckets.size < this.#maxBuckets || this.#evictOne(now)) {
      buckets.set(key, step.state);
    }
    return step.result;
  }

  /** `_replay` changes nothing here: one process, no replica to wait for. */
  async revoke(tokenId: string, expiresAtMs: number, _replay?: boolean): Promise<void> {
    if (expiresAtMs > Date.now()) this.#revoked.set(tokenId, expiresAtMs);
  }

  isRevoked(tokenId: string, subject?: string, issuedAtMs = 0): boolean {
    if (subject !== undefined && this.#subjects.size > 0) {
      const entry = this.#subjects.get(subject);
      if (entry !== undefined && entry.expiresAt > Date.now() && issuedAtMs <= entry.at) return true;
    }
    const expiresAt = this.#revoked.get(tokenId);
    if (expiresAt === undefined) return false;
    if (expiresAt > Date.now()) return true;
    this.#revoked.delete(tokenId);
    return false;
  }

  async revokeSubject(subject: string, revokedAtMs: number, ttlMs: number): Promise<void> {
    const expiresAt = Date.now() + ttlMs;
    if (ttlMs <= 0) return;
    const current = this.#subjects.get(subject);
    if (current !== undefined && current.at >= revokedAtMs && current.expiresAt > Date.now()) return;
    this.#subjects.set(subject, { at: revokedAtMs, expiresAt });
  }

  async getValue(key: string): Promise<string | undefined> {
    return this.#liveValue(key)?.value;
  }

  async setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#store(key, value, ttlMs === undefined ? Infinity : this.#now() + ttlMs);
  }

  /** Synchronous inside, so atomic within the process (the only place a memory store is shared). */
  async increment(key: string, ttlMs: number): Promise<number> {
    const current = this.#liveValue(key);
    if (current !== undefined && !/^-?\d+$/.test(current.value)) throw new KvValueError();
    const next = (current === undefined ? 0 : Number(current.value)) + 1;
    const expiresAt = current === undefined || current.expiresAt === Infinity ? this.#now() + ttlMs : current.expiresAt;
    this.#store(key, String(next), expiresAt);
    return next;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sweeping = undefined;
    this.#buckets.clear();
    this.#revoked.clear();
    this.#subjects.clear();
    this.#values.clear();
  }

  /**
   * Drops every bucket that is full again (it holds no information: a new bucket starts full) and every expired
   * revocation. Runs on the timer; callable directly. Returns how many entries were dropped.
   */
  sweep(): number {
    let dropped = 0;
    const now = this.#now();
    const buckets = this.#buckets;
    // Deleting the current entry while iterating a Map is safe and does not skip entries.
    for (let it = buckets.entries(), next = it.next(); next.done !== true; next = it.next()) {
      if (buckets.isFullAt(next.value[1], now)) {
        buckets.delete(next.value[0]);
        dropped++;
      }
    }
    buckets.compact();
    const wall = Date.now();
    for (const [jti, expiresAt] of this.#revoked) {
      if (expiresAt <= wall) {
        this.#revoked.delete(jti);
        dropped++;
      }
    }
    dropped += this.#sweepValues(now);
    return dropped;
  }

  /** Live bucket entries (some may be full already and waiting for the next sweep). */
  get bucketCount(): number {
    return this.#buckets.size;
  }

  /** Revocation entries not yet swept. */
  get revocationCount(): number {
    return this.#revoked.size;
  }

  /** Milliseconds until `key`'s bucket is full again and dropped, or undefined when there is none. For tests. */
  bucketTtlMs(key: string): number | undefined {
    const fullAtMs = this.#buckets.fullAtMs(key);
    if (fullAtMs === undefined) return undefined;
    const ttl = fullAtMs - this.#now();
    return ttl > 0 ? ttl : undefined;
  }

  /**
   * The timed sweep works in chunks of SWEEP_CHUNK entries, one per event-loop turn: a full pass over a million
   * buckets takes ~250 ms, which must not stall requests. Map iterators stay valid while entries are added or
   * deleted, so resuming one later is safe.
   */
  #startSweep(): void {
    if (this.#sweeping !== undefined) return; // the previous pass is still running
    const wall = Date.now();
    for (const [jti, expiresAt] of this.#revoked) if (expiresAt <= wall) this.#revoked.delete(jti);
    for (const [subject, entry] of this.#subjects) if (entry.expiresAt <= wall) this.#subjects.delete(subject);
    this.#sweepValues(this.#now());
    this.#sweeping = this.#buckets.entries();
    this.#sweepChunk();
  }

  #sweepChunk(): void {
    const iterator = this.#sweeping;
    if (iterator === undefined) return;
    const now = this.#now();
    for (let i = 0; i < SWEEP_CHUNK; i++) {
      const next = iterator.next();
      if (next.done === true) {
        this.#sweeping = undefined;
        this.#buckets.compact(); // after a flood, give the arrays back
        return;
      }
      if (this.#buckets.isFullAt(next.value[1], now)) this.#buckets.delete(next.value[0]);
    }
    setImmediate(this.#continueSweep);
  }

  /** Drops the oldest bucket that is not refusing its client now; false when none was found (see EVICTION_SCAN). */
  #evictOne(now: number): boolean {
    const buckets = this.#buckets;
    for (let i = 0; i < EVICTION_SCAN; i++) {
      // Map iteration order is insertion order, so the first entry is the one created (or moved back) longest ago.
      const first = buckets.entries().next();
      if (first.done === true) return true;
      const [key, slot] = first.value;
      if (!buckets.isLimitingAt(slot, now)) {
        buckets.delete(key);
        return true;
      }
      buckets.moveToBack(key, slot); // limiting: keep it, at the back
    }
    return false;
  }

  /** Plain values not yet swept. */
  get valueCount(): number {
    return this.#values.size;
  }

  /** The value of `key` unless it has expired (an expired one is dropped on the way). */
  #liveValue(key: string): StoredValue | undefined {
    const entry = this.#values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    this.#values.delete(key);
    return undefined;
  }

  #store(key: string, value: string, expiresAt: number): void {
    const values = this.#values;
    // Re-inserting moves the key to the end of the Map's order, so eviction drops the value written longest ago.
    if (!values.delete(key) && values.size >= this.#maxValues) {
      const oldest = values.keys().next();
      if (oldest.done !== true) values.delete(oldest.value);
    }
    values.set(key, { value, expiresAt });
  }

  /** Drops expired values; the cap keeps their number small enough for one pass (100 000 entries: ~5 ms). */
  #sweepValues(now: number): number {
    let dropped = 0;
    for (const [key, entry] of this.#values) {
      if (entry.expiresAt <= now) {
        this.#values.delete(key);
        dropped++;
      }
    }
    return dropped;
  }
}

/** Creates the memory store; called once by the composition root when `redis.url` is empty. */
export function createMemoryKvStore(options?: MemoryKvOptions): MemoryKvStore {
  return new MemoryKvStore(options);
}
