// Compact storage of token buckets for the memory store: key → slot in a Map, the three numbers of each bucket in
// parallel Float64Arrays. A million clients fit in about 85 MB (bench/limiter.ts) instead of ~176 MB with one
// object per bucket: V8 keeps each double field of an object as its own 16-byte heap number, and the object header
// costs as much again; a slot costs 32 bytes. New keys are stored as a flat copy (see flatKey).
import type { BucketState } from '../ratelimit/bucket.js';

const INITIAL_SLOTS = 1024;

/** Buckets by key, in insertion order (the oldest first, for eviction). Not a general map: no per-entry objects. */
export class BucketTable {
  readonly #slots = new Map<string, number>();
  #tokens = new Float64Array(INITIAL_SLOTS);
  #updatedMs = new Float64Array(INITIAL_SLOTS);
  #fullAtMs = new Float64Array(INITIAL_SLOTS);
  /** Until when the bucket refuses its client (eviction never drops a bucket that is limiting someone). */
  #emptyUntilMs = new Float64Array(INITIAL_SLOTS);
  /** Freed slots, reused before the arrays grow (a stack: #free[0..#freeCount)). */
  #free = new Int32Array(INITIAL_SLOTS);
  #freeCount = 0;
  /** Slots ever handed out (the high-water mark in the arrays). */
  #used = 0;

  get size(): number {
    return this.#slots.size;
  }

  /** The state of `key`'s bucket, or undefined. Allocates the small state object the pure arithmetic takes. */
  get(key: string): BucketState | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    return {
      tokens: this.#tokens[slot]!,
      updatedMs: this.#updatedMs[slot]!,
      fullAtMs: this.#fullAtMs[slot]!,
      emptyUntilMs: this.#emptyUntilMs[slot]!,
    };
  }

  /** When `key`'s bucket is full again, or undefined. */
  fullAtMs(key: string): number | undefined {
    const slot = this.#slots.get(key);
    return slot === undefined ? undefined : this.#fullAtMs[slot];
  }

  set(key: string, state: BucketState): void {
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = this.#allocate();
      this.#slots.set(flatKey(key), slot);
    }
    this.#tokens[slot] = state.tokens;
    this.#updatedMs[slot] = state.updatedMs;
    this.#fullAtMs[slot] = state.fullAtMs;
    this.#emptyUntilMs[slot] = state.emptyUntilMs;
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    if (this.#freeCount === this.#free.length) this.#free = growInt32(this.#free, this.#free.length * 2);
    this.#free[this.#freeCount++] = slot;
  }

  /** The key created longest ago (Map order is insertion order), or undefined when empty. */
  oldestKey(): string | undefined {
    const first = this.#slots.keys().next();
    return first.done === true ? undefined : first.value;
  }

  /**
   * A live iterator over [key, slot]; with `isExpired(slot)` a sweep can walk it in chunks across event-loop turns
   * (a Map iterator stays valid while entries are added or deleted).
   */
  entries(): Iterator<[string, number]> {
    return this.#slots.entries();
  }

  isFullAt(slot: number, nowMs: number): boolean {
    return this.#fullAtMs[slot]! <= nowMs;
  }

  /** True while the bucket in `slot` refuses its client. */
  isLimitingAt(slot: number, nowMs: number): boolean {
    return this.#emptyUntilMs[slot]! > nowMs;
  }

  /** Moves `key` to the back of the insertion order (the newest), keeping its slot. */
  moveToBack(key: string, slot: number): void {
    this.#slots.delete(key);
    this.#slots.set(key, slot);
  }

  clear(): void {
    this.#slots.clear();
    this.#freeCount = 0;
    this.#used = 0;
    this.#free = new Int32Array(INITIAL_SLOTS);
    this.#resize(INITIAL_SLOTS);
  }

  /**
   * Gives memory back after a flood: when at most a quarter of the slots are live, the live buckets move to the
   * front of smaller arrays. Safe while a sweep's iterator is open: it reads each entry's current slot.
   */
  compact(): void {
    const capacity = this.#tokens.length;
    const live = this.#slots.size;
    if (capacity <= INITIAL_SLOTS || live > capacity / 4) return;
    const next = Math.max(INITIAL_SLOTS, 2 ** Math.ceil(Math.log2(live * 2 || 1)));
    const tokens = new Float64Array(next);
    const updated = new Float64Array(next);
    const fullAt = new Float64Array(next);
    const emptyUntil = new Float64Array(next);
    let slot = 0;
    for (const [key, old] of this.#slots) {
      tokens[slot] = this.#tokens[old]!;
      updated[slot] = this.#updatedMs[old]!;
      fullAt[slot] = this.#fullAtMs[old]!;
      emptyUntil[slot] = this.#emptyUntilMs[old]!;
      this.#slots.set(key, slot++);
    }
    this.#tokens = tokens;
    this.#updatedMs = updated;
    this.#fullAtMs = fullAt;
    this.#emptyUntilMs = emptyUntil;
    this.#free = new Int32Array(INITIAL_SLOTS);
    this.#freeCount = 0;
    this.#used = slot;
  }

  #allocate(): number {
    if (this.#freeCount > 0) return this.#free[--this.#freeCount]!;
    if (this.#used === this.#tokens.length) this.#resize(this.#tokens.length * 2);
    return this.#used++;
  }

  #resize(capacity: number): void {
    const grow = (old: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const next = new Float64Array(capacity);
      next.set(old.subarray(0, Math.min(old.length, capacity)));
      return next;
    };
    this.#tokens = grow(this.#tokens);
    this.#updatedMs = grow(this.#updatedMs);
    this.#fullAtMs = grow(this.#fullAtMs);
    this.#emptyUntilMs = grow(this.#emptyUntilMs);
  }
}

function growInt32(old: Int32Array<ArrayBuffer>, capacity: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(capacity);
  next.set(old);
  return next;
}

/**
 * A key built by concatenation ('p:' + address) is a V8 rope: kept as a Map key it holds the rope and, once hashed,
 * a flat copy besides: about 26 bytes a client more than the characters need. A UTF-8 round trip through a Buffer
 * yields one flat string, once per new key (not per request). Keys with surrogates are kept as they are (a lone
 * surrogate would turn into U+FFFD and could collide with another key).
 */
function flatKey(key: string): string {
  return SURROGATE.test(key) ? key : Buffer.from(key, 'utf8').toString('utf8');
}

const SURROGATE = /[\uD800-\uDFFF]/;
