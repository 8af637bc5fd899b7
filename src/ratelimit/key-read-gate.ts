// The uncached API-key store reads in flight, per key-read bucket, in this process. The bucket is only looked at
// before a read (a valid key must never spend it) and spent after the read found the key unknown; so, without a count
// of the reads already under way, every made-up key sent at once saw the same unspent tokens and went to the store:
// 200 at once with a burst of 3 made 40 store reads where 3 were promised. A read may start only while the bucket
// holds more tokens than there are reads in flight against it; the others wait for one to end and look again.
// Pure bookkeeping: no timers, no store.

/** Reads in flight against one bucket, and the requests waiting for one of them to end, first come first served. */
interface GateEntry {
  inFlight: number;
  readonly waiting: Array<() => void>;
}

export class KeyReadGate {
  readonly #entries = new Map<string, GateEntry>();

  /**
   * One more read against `key` when fewer than `tokens` are in flight (true: the caller must `leave` once its read
   * is over and the bucket spent or not); false when the tokens are all spoken for by reads under way.
   */
  tryEnter(key: string, tokens: number): boolean {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      if (tokens < 1) return false;
      entry = { inFlight: 0, waiting: [] };
      this.#entries.set(key, entry);
    }
    if (entry.inFlight >= tokens) return false;
    entry.inFlight++;
    return true;
  }

  /**
   * Resolves when a read against `key` ends (or a woken waiter gives its turn on). Only called after tryEnter
   * refused with reads in flight, so there is always a read whose end wakes it.
   */
  waitTurn(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => entry.waiting.push(resolve));
  }

  /** A read that entered is over (its bucket already spent when the key was unknown): the next waiter looks again. */
  leave(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    entry.inFlight = Math.max(0, entry.inFlight - 1);
    this.passOn(key);
  }

  /**
   * A woken waiter that did not enter (the bucket was empty, or the store could not say) wakes the next one, which
   * would otherwise wait for a read that never comes. Drops the entry once nothing is in flight or waiting.
   */
  passOn(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    const next = entry.waiting.shift();
    if (next !== undefined) next();
    else if (entry.inFlight === 0) this.#entries.delete(key);
  }

  /** Buckets with reads in flight or waiters (for tests: the map empties when the traffic stops). */
  get size(): number {
    return this.#entries.size;
  }
}
