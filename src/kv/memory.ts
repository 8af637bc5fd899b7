// In-process KvStore: exact within one process, synchronous, and bounded (idle buckets are swept, entries capped).
import { performance } from 'node:perf_hooks';
import { refundToken, takeToken } from '../ratelimit/bucket.js';
import { BucketTable, LIMITING, RuleLog } from './bucket-table.js';
import { KvValueError, type BucketRule, type KvStore, type TakeResult } from './kv-store.js';
import { refusesToken, type SubjectRevocation } from './subject-revocation.js';

/** Options of the memory store; every field has a default. */
export interface MemoryKvOptions {
  /** How often buckets that are full again and expired revocations are dropped. Default 10 000 ms. */
  readonly sweepIntervalMs?: number;
  /**
   * Hard cap on live buckets, a safety net for floods from many addresses between sweeps. At the cap the fullest of
   * a few buckets looked at is dropped (see EVICTION_SAMPLE): a full bucket loses nothing by going, a nearly full one
   * little; one that is limiting its client or less than half full goes only when none of those looked at may (as
   * nginx's limit_req drops its least recently used entry), so a new client is always kept and limited. Default 500 000 (about 50 MB of heap at ~95 bytes a bucket, key included, see bench/limiter.ts).
   */
  readonly maxBuckets?: number;
  /** Hard cap on plain values (plugins' store); at the cap the oldest-written value is dropped. Default 100 000. */
  readonly maxValues?: number;
  /**
   * Hard cap on the heap the plain values take together, keys included, counted as two bytes a UTF-16 code unit (an
   * upper bound: V8 keeps Latin-1 strings in one byte a character). At the cap the oldest-written values are dropped
   * until the new one fits. Default 64 MiB: without it, 100 000 values of a megabyte each were 200 GB.
   */
  readonly maxValueBytes?: number;
  /** The clock in ms; monotonic performance.now() by default (tests may pass their own). */
  readonly now?: () => number;
}

const DEFAULT_SWEEP_MS = 10_000;
const DEFAULT_MAX_BUCKETS = 500_000;
const DEFAULT_MAX_VALUES = 100_000;
const DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024;

/** What a plain value is counted as against maxValueBytes (see MemoryKvOptions). */
function valueBytes(key: string, value: string): number {
  return 2 * (key.length + value.length);
}

/** A plain value and when it expires (the store's clock; Infinity: never). */
interface StoredValue {
  readonly value: string;
  readonly expiresAt: number;
}
const SWEEP_CHUNK = 10_000;
/**
 * Buckets looked at per eviction, from a cursor that walks the table round and round, so the work per insert stays
 * constant and every bucket is looked at in turn. The first full one met goes at once; otherwise the fullest of the
 * sample, as long as it holds at least MIN_EVICTABLE_FULLNESS of its burst: evicting a bucket hands its client the
 * missing tokens early, so the fullest loses least. When none qualifies (every bucket looked at, up to
 * EVICTION_LOOK_LIMIT, is limiting its client or under half full), the one of them taken from least recently goes
 * anyway, as nginx's limit_req drops its least recently used entry when its zone is full. Two other answers were
 * tried and are worse:
 * - judging the new client on a fresh full bucket that is never stored let every request of every client past the
 *   cap through: 500 000 buckets of a burst-1 policy, each limiting after one request, are 500 000 addresses (/64s of
 *   one IPv6 allocation) a refill period, and then every further address, the attacker's and real visitors', was
 *   unlimited;
 * - refusing the new client (fc75c85) let those same 500 000 addresses lock every new visitor out of every route and
 *   of /auth/login, the store being one for every policy.
 * Dropping a limiting bucket hands its client its burst back early; but a bucket in use (a login's per-email one while
 * someone guesses its password: every take dates it, refused ones too) is the last of a sample to go, while the
 * buckets that fill a table are the ones a flood touches once a refill period.
 */
const EVICTION_SAMPLE = 32;
/** Below this share of its burst a bucket is never evicted: its client is being throttled (see EVICTION_SAMPLE). */
const MIN_EVICTABLE_FULLNESS = 0.5;
/**
 * Buckets looked at before one that is limiting or under half full goes, when the first EVICTION_SAMPLE held none
 * that may: such an eviction hands a throttled client its burst back, so a rare evictable bucket is looked for a
 * little further (a constant bound still: 128 steps of the cursor, a few microseconds).
 */
const EVICTION_LOOK_LIMIT = 4 * EVICTION_SAMPLE;

/** What increment() counts from: decimal, no leading zero or "-0", exact as a number (the Redis script's rule). */
const INTEGER_VALUE = /^(0|-?[1-9]\d{0,15})$/;

function isCountable(value: string): boolean {
  return INTEGER_VALUE.test(value) && Math.abs(Number(value)) < Number.MAX_SAFE_INTEGER;
}

/** The memory store; `sweep()` and the size getters are public so tests and benchmarks can observe the bounds. */
export class MemoryKvStore implements KvStore {
  readonly #buckets = new BucketTable();
  /** The rules takes have used: a bucket is judged under a rule met after its last take too (a reload's new rule). */
  readonly #rules = new RuleLog();
  /** Where eviction looks next (see EVICTION_SAMPLE); dropped when a sweep ends, so it pins no old Map table. */
  #evictionCursor: Iterator<[string, number]> | undefined;
  /** jti → expiry (epoch ms, as given by the caller). */
  readonly #revoked = new Map<string, number>();
  /** subject → its revocation time and generation (see SubjectRevocation), and when the entry expires (epoch ms). */
  readonly #subjects = new Map<string, SubjectRevocation & { readonly at: number; readonly expiresAt: number }>();
  readonly #values = new Map<string, StoredValue>();
  readonly #maxBuckets: number;
  readonly #maxValues: number;
  readonly #maxValueBytes: number;
  /** Sum of valueBytes() over #values. */
  #valueBytes = 0;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** The timer's sweep in progress: it resumes this iterator a chunk at a time. */
  #sweeping: Iterator<[string, number]> | undefined;
  readonly #continueSweep = (): void => this.#sweepChunk();

  constructor(options: MemoryKvOptions = {}) {
    this.#maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    this.#maxValues = options.maxValues ?? DEFAULT_MAX_VALUES;
    this.#maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.#now = options.now ?? performance.now.bind(performance);
    this.#timer = setInterval(() => this.#startSweep(), options.sweepIntervalMs ?? DEFAULT_SWEEP_MS);
    // The sweep must never keep the process alive on its own.
    this.#timer.unref();
  }

  /**
   * Synchronous: reads, refills and decrements in one step, so it is atomic within the process. The stored tokens are
   * refilled under the rule given now, whatever rule wrote them: after a reload that slows a rule, a client drained
   * under the old one has only what the new rate gave back since (never a fresh burst once the old rule would have
   * refilled it).
   */
  take(key: string, rule: BucketRule): TakeResult {
    const buckets = this.#buckets;
    const now = this.#now();
    this.#rules.note(rule, now);
    const slot = buckets.slotOf(key);
    const step = takeToken(slot === undefined ? undefined : buckets.stateAt(slot), rule, now);
    if (step.result.resetMs === 0) {
      // Full under the rule that took from it, and written now, after every rule met so far: nothing to keep.
      if (slot !== undefined) buckets.delete(key);
    } else if (slot !== undefined) {
      buckets.write(slot, step.state, rule);
    } else {
      if (buckets.size >= this.#maxBuckets) this.#evictOne(now);
      buckets.insert(key, step.state, rule);
    }
    return step.result;
  }

  /** See KvStore.expectRules: when `scope` had other rules, each of these applies to every bucket written before now. */
  expectRules(scope: string, rules: readonly BucketRule[]): void {
    const values = rules.map((r) => `${r.capacity}/${r.refillPerSecond}`).join(' ');
    const before = this.#expected.get(scope);
    this.#expected.set(scope, values);
    // A scope met for the first time has no buckets yet: its policy is new (keys are per policy).
    if (before === undefined || before === values) return;
    const now = this.#now();
    for (const rule of rules) this.#rules.note(rule, now, true);
  }

  /** The rule values each limiter scope last said it takes under (expectRules). */
  readonly #expected = new Map<string, string>();

  /** What `take` would decide now (takeToken's decision), with nothing written: no bucket created, none changed. */
  peek(key: string, rule: BucketRule): TakeResult {
    const buckets = this.#buckets;
    const slot = buckets.slotOf(key);
    return takeToken(slot === undefined ? undefined : buckets.stateAt(slot), rule, this.#now()).result;
  }

  /** Synchronous, so atomic within the process; a bucket full again is dropped, as `take` drops it. */
  refund(key: string, rule: BucketRule): void {
    const buckets = this.#buckets;
    const slot = buckets.slotOf(key);
    if (slot === undefined) return;
    const now = this.#now();
    this.#rules.note(rule, now);
    const state = refundToken(buckets.stateAt(slot), rule, now);
    if (state === undefined) buckets.delete(key);
    else buckets.write(slot, state, rule);
  }

  /** `_replay` changes nothing here: one process, no replica to wait for. */
  async revoke(tokenId: string, expiresAtMs: number, _replay?: boolean): Promise<void> {
    if (expiresAtMs > Date.now()) this.#revoked.set(tokenId, expiresAtMs);
  }

  isRevoked(tokenId: string, subject?: string, issuedAtMs = 0, generation?: number): boolean {
    if (subject !== undefined && this.#subjects.size > 0) {
      const entry = this.#subjects.get(subject);
      if (entry !== undefined && entry.expiresAt > Date.now() && refusesToken(entry, issuedAtMs, generation)) return true;
    }
    const expiresAt = this.#revoked.get(tokenId);
    if (expiresAt === undefined) return false;
    if (expiresAt > Date.now()) return true;
    this.#revoked.delete(tokenId);
    return false;
  }

  /** As the Redis script (redis.ts REVOKE_SUBJECT_SCRIPT): neither the time nor the generation is ever lowered. */
  async revokeSubject(subject: string, revokedAtMs: number, ttlMs: number, generation?: number): Promise<void> {
    if (ttlMs <= 0) return;
    const wall = Date.now();
    const expiresAt = wall + ttlMs;
    const stored = this.#subjects.get(subject);
    const current = stored !== undefined && stored.expiresAt > wall ? stored : undefined;
    if (generation === undefined && current !== undefined && current.at >= revokedAtMs) return;
    const at = current === undefined ? revokedAtMs : Math.max(current.at, revokedAtMs);
    const kept = Math.max(current?.expiresAt ?? 0, expiresAt);
    if (generation === undefined) {
      this.#subjects.set(subject, { ...current, at, expiresAt: kept });
      return;
    }
    const highest = current?.generation === undefined ? generation : Math.max(current.generation, generation);
    // The time this generation covers: its own, or a later one a generation covered before, never a later time written
    // without one (a replay of an earlier change would hide that revocation from tokens with a generation).
    const generationAt = Math.max(current?.generationAt ?? revokedAtMs, revokedAtMs);
    this.#subjects.set(subject, { at, generation: highest, generationAt, expiresAt: kept });
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
    if (current !== undefined && !isCountable(current.value)) throw new KvValueError();
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
    this.#evictionCursor = undefined;
    this.#buckets.clear();
    this.#revoked.clear();
    this.#subjects.clear();
    this.#values.clear();
    this.#valueBytes = 0;
  }

  /**
   * Drops every bucket that is full again (it holds no information: a new bucket starts full) and every expired
   * revocation. Runs on the timer; callable directly. Returns how many entries were dropped.
   */
  sweep(): number {
    let dropped = 0;
    const now = this.#now();
    const buckets = this.#buckets;
    const newRules = this.#rules.pendingAt(now);
    this.#evictionCursor = undefined;
    // Deleting the current entry while iterating a Map is safe and does not skip entries.
    for (let it = buckets.entries(), next = it.next(); next.done !== true; next = it.next()) {
      if (buckets.isFullAt(next.value[1], now, newRules)) {
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

  /**
   * The rules met lately that each bucket is checked against besides its own, by the sweep and by eviction (bounded:
   * see RuleLog). For tests.
   */
  get pendingRuleCount(): number {
    return this.#rules.pendingAt(this.#now()).length;
  }

  /** Revocation entries not yet swept. */
  get revocationCount(): number {
    return this.#revoked.size;
  }

  /**
   * Milliseconds until `key`'s bucket is full again (under its rule and any rule met since its last take) and
   * dropped, or undefined when there is none. For tests.
   */
  bucketTtlMs(key: string): number | undefined {
    const slot = this.#buckets.slotOf(key);
    if (slot === undefined) return undefined;
    const now = this.#now();
    const ttl = this.#buckets.fullAtMs(slot, this.#rules.pendingAt(now)) - now;
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
    const newRules = this.#rules.pendingAt(now);
    for (let i = 0; i < SWEEP_CHUNK; i++) {
      const next = iterator.next();
      if (next.done === true) {
        this.#sweeping = undefined;
        this.#evictionCursor = undefined; // a new one starts at the front, on the Map's current table
        this.#buckets.compact(); // after a flood, give the arrays back
        return;
      }
      if (this.#buckets.isFullAt(next.value[1], now, newRules)) this.#buckets.delete(next.value[0]);
    }
    setImmediate(this.#continueSweep);
  }

  /**
   * Drops the first full bucket of the next EVICTION_SAMPLE, else the fullest of them if it holds at least
   * MIN_EVICTABLE_FULLNESS of its burst. When none qualifies it looks on, up to EVICTION_LOOK_LIMIT buckets, for the
   * first that does; and when none does, the one looked at that was taken from least recently goes anyway, so there
   * is always room for the new client (see EVICTION_SAMPLE).
   */
  #evictOne(now: number): void {
    const buckets = this.#buckets;
    const newRules = this.#rules.pendingAt(now);
    let victim: string | undefined;
    let victimFullness = LIMITING;
    let stalest: string | undefined;
    let stalestMs = Infinity;
    for (let i = 0; i < EVICTION_LOOK_LIMIT; i++) {
      if (i >= EVICTION_SAMPLE && victimFullness >= MIN_EVICTABLE_FULLNESS) break;
      const next = this.#nextForEviction();
      if (next === undefined) return; // empty table: room enough
      const fullness = buckets.fullnessAt(next[1], now, newRules);
      if (fullness >= 1) {
        buckets.delete(next[0]);
        return;
      }
      if (fullness > victimFullness) {
        victim = next[0];
        victimFullness = fullness;
      }
      const updatedMs = buckets.updatedMsAt(next[1]);
      if (updatedMs < stalestMs) {
        stalest = next[0];
        stalestMs = updatedMs;
      }
    }
    const drop = victim !== undefined && victimFullness >= MIN_EVICTABLE_FULLNESS ? victim : stalest;
    if (drop !== undefined) buckets.delete(drop);
  }

  /** The next [key, slot] under the eviction cursor, starting over at the front after the last; undefined when empty. */
  #nextForEviction(): [string, number] | undefined {
    let next = this.#evictionCursor?.next();
    if (next === undefined || next.done === true) {
      this.#evictionCursor = this.#buckets.entries();
      next = this.#evictionCursor.next();
    }
    return next.done === true ? undefined : next.value;
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
    this.#dropValue(key, entry);
    return undefined;
  }

  #store(key: string, value: string, expiresAt: number): void {
    const values = this.#values;
    const previous = values.get(key);
    // Re-inserting moves the key to the end of the Map's order, so eviction drops the value written longest ago.
    if (previous !== undefined) this.#dropValue(key, previous);
    const bytes = valueBytes(key, value);
    while (values.size > 0 && (values.size >= this.#maxValues || this.#valueBytes + bytes > this.#maxValueBytes)) {
      const [oldestKey, oldest] = values.entries().next().value as [string, StoredValue];
      this.#dropValue(oldestKey, oldest);
    }
    values.set(key, { value, expiresAt });
    this.#valueBytes += bytes;
  }

  #dropValue(key: string, entry: StoredValue): void {
    this.#values.delete(key);
    this.#valueBytes -= valueBytes(key, entry.value);
  }

  /** Drops expired values; the cap keeps their number small enough for one pass (100 000 entries: ~5 ms). */
  #sweepValues(now: number): number {
    let dropped = 0;
    for (const [key, entry] of this.#values) {
      if (entry.expiresAt <= now) {
        this.#dropValue(key, entry);
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
