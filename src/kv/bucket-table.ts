// Compact storage of token buckets for the memory store: key → slot in a Map, the four numbers of each bucket in
// parallel Float64Arrays. A million clients fit in about 85 MB (bench/limiter.ts) instead of ~176 MB with one
// object per bucket: V8 keeps each double field of an object as its own 16-byte heap number, and the object header
// costs as much again; a slot costs 32 bytes. New keys are stored as a flat copy (see flatKey).
import { TOKEN_EPSILON, type BucketState } from '../ratelimit/bucket.js';
import type { BucketRule } from './kv-store.js';

const INITIAL_SLOTS = 1024;

/**
 * A rule the store met after some buckets were last written (a reload's new rule, a rule a plugin starts using).
 * Those buckets may be taken under it next, so they are judged under it too until it can no longer matter.
 */
export interface NewRule {
  readonly capacity: number;
  readonly refillPerSecond: number;
  /** When the store first met it: it applies to buckets last written before this time. */
  readonly firstMs: number;
  /** From then on, every bucket written before is full under it (tokens are never negative): it keeps nobody. */
  readonly mattersUntilMs: number;
}

/**
 * A NewRule as RuleLog keeps it: moved to a later time when its rule is met again after being forgotten; the
 * envelope (see RuleLog) also widens its capacity and rate.
 */
interface PendingRule extends NewRule {
  capacity: number;
  refillPerSecond: number;
  firstMs: number;
  mattersUntilMs: number;
}

/** fullnessAt's answer for a bucket that refuses its client now (under one token): eviction never drops it. */
export const LIMITING = -1;

/**
 * Buckets by key. Each keeps its tokens and last update time, and the rule of its last take, not a precomputed "full
 * at" time: when it may be dropped (or counts as nearly full) depends on the rule that will take from it next, which
 * a reload may have changed since (see NewRule).
 */
export class BucketTable {
  readonly #slots = new Map<string, number>();
  #tokens = new Float64Array(INITIAL_SLOTS);
  #updatedMs = new Float64Array(INITIAL_SLOTS);
  #capacity = new Float64Array(INITIAL_SLOTS);
  #refillPerSecond = new Float64Array(INITIAL_SLOTS);
  /** Freed slots, reused before the arrays grow (a stack: #free[0..#freeCount)). */
  #free = new Int32Array(INITIAL_SLOTS);
  #freeCount = 0;
  /** Slots ever handed out (the high-water mark in the arrays). */
  #used = 0;

  get size(): number {
    return this.#slots.size;
  }

  /** `key`'s slot, or undefined. A slot stays valid until the key is deleted or the table compacted. */
  slotOf(key: string): number | undefined {
    return this.#slots.get(key);
  }

  /**
   * The state the pure arithmetic takes (it reads only tokens and updatedMs; the rest is the bucket's own rule's
   * view, given for completeness). Allocates one small object.
   */
  stateAt(slot: number): BucketState {
    const tokens = this.#tokens[slot]!;
    const updatedMs = this.#updatedMs[slot]!;
    const rate = this.#refillPerSecond[slot]!;
    const fullAtMs = updatedMs + (Math.max(0, this.#capacity[slot]! - tokens) * 1000) / rate;
    const emptyUntilMs = updatedMs + (Math.max(0, 1 - tokens) * 1000) / rate;
    return { tokens, updatedMs, fullAtMs, emptyUntilMs };
  }

  /** Stores a take's outcome in an existing slot, with the rule it was taken under. */
  write(slot: number, state: BucketState, rule: BucketRule): void {
    this.#tokens[slot] = state.tokens;
    this.#updatedMs[slot] = state.updatedMs;
    this.#capacity[slot] = rule.capacity;
    this.#refillPerSecond[slot] = rule.refillPerSecond;
  }

  /** Stores a new key's bucket. */
  insert(key: string, state: BucketState, rule: BucketRule): void {
    const slot = this.#allocate();
    this.#slots.set(flatKey(key), slot);
    this.write(slot, state, rule);
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    if (this.#freeCount === this.#free.length) this.#free = growInt32(this.#free, this.#free.length * 2);
    this.#free[this.#freeCount++] = slot;
  }

  /**
   * A live iterator over [key, slot] in insertion order; a sweep or the eviction cursor can walk it across
   * event-loop turns (a Map iterator stays valid while entries are added or deleted).
   */
  entries(): Iterator<[string, number]> {
    return this.#slots.entries();
  }

  /**
   * When the bucket in `slot` is full under its own rule and under every rule in `newRules` that applies to it, i.e.
   * when its state carries no information for whichever of them takes from it next.
   */
  fullAtMs(slot: number, newRules: readonly NewRule[]): number {
    const tokens = this.#tokens[slot]!;
    const updated = this.#updatedMs[slot]!;
    let at = updated + (Math.max(0, this.#capacity[slot]! - tokens) * 1000) / this.#refillPerSecond[slot]!;
    for (const rule of newRules) {
      if (rule.firstMs <= updated) continue;
      const ruleAt = updated + (Math.max(0, rule.capacity - tokens) * 1000) / rule.refillPerSecond;
      if (ruleAt > at) at = ruleAt;
    }
    return at;
  }

  /** True when dropping the bucket changes nothing: a new bucket starts full (see fullAtMs). */
  isFullAt(slot: number, nowMs: number, newRules: readonly NewRule[]): boolean {
    const tokens = this.#tokens[slot]!;
    const updated = this.#updatedMs[slot]!;
    if (!isFullUnder(tokens, updated, this.#capacity[slot]!, this.#refillPerSecond[slot]!, nowMs)) return false;
    for (const rule of newRules) {
      if (rule.firstMs > updated && !isFullUnder(tokens, updated, rule.capacity, rule.refillPerSecond, nowMs)) return false;
    }
    return true;
  }

  /**
   * How full the bucket is now, tokens / capacity (0 to 1), under the strictest of its own rule and the new rules
   * that apply to it; LIMITING (-1) while any of them would refuse its client (under one token).
   */
  fullnessAt(slot: number, nowMs: number, newRules: readonly NewRule[]): number {
    const tokens = this.#tokens[slot]!;
    const updated = this.#updatedMs[slot]!;
    let fullness = fullnessUnder(tokens, updated, this.#capacity[slot]!, this.#refillPerSecond[slot]!, nowMs);
    for (const rule of newRules) {
      if (fullness === LIMITING) break;
      if (rule.firstMs <= updated) continue;
      const under = fullnessUnder(tokens, updated, rule.capacity, rule.refillPerSecond, nowMs);
      if (under < fullness) fullness = under;
    }
    return fullness;
  }

  /** When the bucket was last taken from or written (a refused take too): eviction's fallback drops the stalest. */
  updatedMsAt(slot: number): number {
    return this.#updatedMs[slot]!;
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
    const columns = [this.#tokens, this.#updatedMs, this.#capacity, this.#refillPerSecond];
    const moved = columns.map(() => new Float64Array(next));
    let slot = 0;
    for (const [key, old] of this.#slots) {
      for (let c = 0; c < columns.length; c++) moved[c]![slot] = columns[c]![old]!;
      this.#slots.set(key, slot++);
    }
    [this.#tokens, this.#updatedMs, this.#capacity, this.#refillPerSecond] = moved as [Float64Array<ArrayBuffer>, Float64Array<ArrayBuffer>, Float64Array<ArrayBuffer>, Float64Array<ArrayBuffer>];
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
    this.#capacity = grow(this.#capacity);
    this.#refillPerSecond = grow(this.#refillPerSecond);
  }
}

/** Tokens at `nowMs` under a rule, as takeToken refills them (a clock stepping back grants nothing). */
function tokensUnder(tokens: number, updatedMs: number, capacity: number, refillPerSecond: number, nowMs: number): number {
  const refilled = nowMs > updatedMs ? tokens + ((nowMs - updatedMs) * refillPerSecond) / 1000 : tokens;
  return refilled > capacity ? capacity : refilled;
}

/** Full as takeToken judges it: within TOKEN_EPSILON of capacity. */
function isFullUnder(tokens: number, updatedMs: number, capacity: number, refillPerSecond: number, nowMs: number): boolean {
  return tokensUnder(tokens, updatedMs, capacity, refillPerSecond, nowMs) + TOKEN_EPSILON >= capacity;
}

function fullnessUnder(tokens: number, updatedMs: number, capacity: number, refillPerSecond: number, nowMs: number): number {
  const level = tokensUnder(tokens, updatedMs, capacity, refillPerSecond, nowMs);
  if (level + TOKEN_EPSILON < 1) return LIMITING;
  return level + TOKEN_EPSILON >= capacity ? 1 : level / capacity;
}

/**
 * The rules a store has met, to tell when a new one appears (a reload changed a rule, a plugin started using one).
 * Compared by value: a reload builds new rule objects for unchanged rules too, and a plugin's take builds one per
 * call. Bounded: beyond MAX_KNOWN_RULES the rule met longest ago is forgotten (met again, it counts as new once more,
 * which only keeps some buckets a little longer).
 *
 * The sweep and eviction check each bucket against every pending rule. A plugin whose takes pass many limits in turn
 * (per-tenant quotas) had every one pending at once: 5 000 of them made one sweep of 100 000 buckets take 13 s, in
 * turns of 1.3 s of blocked event loop. Beyond MAX_PENDING_RULES, new rules share one pending entry instead, the
 * envelope: the largest capacity and the slowest rate of the rules merged into it, applied to every bucket written
 * before the last of them was met. A bucket full under it is full under each of them (more tokens to reach, gained
 * more slowly), and no fuller under it than under any of them, so it can only keep buckets longer, never hand a client
 * tokens early; it goes once every rule merged into it has stopped mattering.
 */
export class RuleLog {
  /** Known rules by value (capacity/refill), in the order last met: the first is the one met longest ago. */
  readonly #known = new Map<string, true>();
  #pending: PendingRule[] = [];
  /** The #pending entries by rule value (capacity/refill), so one met again is found at once; never the envelope. */
  readonly #pendingByValue = new Map<string, PendingRule>();
  /** The pending entry that stands for the new rules met past MAX_PENDING_RULES (see the class); also in #pending. */
  #envelope: PendingRule | undefined;
  /** The rule object of the previous call: the limiter passes the same object take after take. */
  #lastRule: BucketRule | undefined;

  /**
   * Records that `rule` is in use at `nowMs`. Constant time for the rule object of the previous call. `configured`:
   * the rule is (again) a limiter's, from now on (start-up, a reload; KvStore.expectRules), so it applies to every
   * bucket written before now even when its value was met before: a reload that gave the default policy the values of
   * another policy (met long before) let the sweep drop a bucket drained under the old rule once that rule had
   * refilled it, and its client got a fresh burst the new rule would have refused. A take alone does not: a rule
   * value met before is then another policy's, whose buckets are keyed apart.
   */
  note(rule: BucketRule, nowMs: number, configured = false): void {
    if (rule === this.#lastRule && !configured) return;
    const value = `${rule.capacity}/${rule.refillPerSecond}`;
    const known = this.#known.delete(value);
    // Re-inserted, so the Map's order stays the order last met.
    this.#known.set(value, true);
    this.#lastRule = rule;
    if (known && !configured) return;
    if (this.#known.size > MAX_KNOWN_RULES) this.#known.delete(this.#known.keys().next().value!);
    const mattersUntilMs = nowMs + (rule.capacity * 1000) / rule.refillPerSecond;
    // A rule forgotten above and met again may still be pending: its one entry moves to now (the same rule,
    // applied to every bucket written before now: those before the old time included). One entry per take
    // instead, with more rules in turn than MAX_KNOWN_RULES (many policies, a plugin's per-tenant limits), grew
    // the list by a take each, and the sweep checks every bucket against every entry: minutes of blocked loop.
    const pending = this.#pendingByValue.get(value);
    if (pending !== undefined) {
      pending.firstMs = nowMs;
      pending.mattersUntilMs = mattersUntilMs;
    } else if (this.#pending.length - (this.#envelope === undefined ? 0 : 1) < MAX_PENDING_RULES) {
      const added = { capacity: rule.capacity, refillPerSecond: rule.refillPerSecond, firstMs: nowMs, mattersUntilMs };
      this.#pending.push(added);
      this.#pendingByValue.set(value, added);
    } else {
      this.#widenEnvelope(rule, nowMs, mattersUntilMs);
    }
  }

  /** The new rules that may still find a bucket not yet full under them (usually none). */
  pendingAt(nowMs: number): readonly NewRule[] {
    if (this.#pending.length > 0 && this.#pending.some((r) => r.mattersUntilMs <= nowMs)) {
      this.#pending = this.#pending.filter((r) => {
        if (r.mattersUntilMs > nowMs) return true;
        if (r === this.#envelope) this.#envelope = undefined;
        else this.#pendingByValue.delete(`${r.capacity}/${r.refillPerSecond}`);
        return false;
      });
    }
    return this.#pending;
  }

  /** Merges a new rule met past MAX_PENDING_RULES into the envelope (see the class), made on first need. */
  #widenEnvelope(rule: BucketRule, nowMs: number, mattersUntilMs: number): void {
    const envelope = this.#envelope;
    if (envelope === undefined) {
      this.#envelope = { capacity: rule.capacity, refillPerSecond: rule.refillPerSecond, firstMs: nowMs, mattersUntilMs };
      this.#pending.push(this.#envelope);
      return;
    }
    envelope.capacity = Math.max(envelope.capacity, rule.capacity);
    envelope.refillPerSecond = Math.min(envelope.refillPerSecond, rule.refillPerSecond);
    envelope.firstMs = nowMs;
    envelope.mattersUntilMs = Math.max(envelope.mattersUntilMs, mattersUntilMs);
  }
}

/** Rules told apart by value; past it the one met longest ago is forgotten. */
const MAX_KNOWN_RULES = 1024;
/** Pending rules checked one by one; past it new ones share the envelope (see RuleLog). */
const MAX_PENDING_RULES = 64;

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
