// Password hashing with argon2id (run on libuv's thread pool, off the event loop) and a timing-equalising dummy verify.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import * as argon2 from 'argon2';

/** argon2id cost parameters, as in config `middleware.auth.argon2`. */
export interface Argon2Params {
  /** Memory in KiB (default 19456 = 19 MiB). */
  readonly memory_kib: number;
  /** Passes over memory (default 2). */
  readonly iterations: number;
  /** Lanes (default 1). */
  readonly parallelism: number;
  /** Hashes that may wait for a free slot before new ones are refused with HasherBusyError (default 256). */
  readonly queue_limit?: number;
}

/** Default of `middleware.auth.argon2.queue_limit`. */
export const DEFAULT_HASH_QUEUE_LIMIT = 256;

/**
 * Thrown instead of queueing when `queue_limit` hashes already wait: a login flood then gets 503 with Retry-After
 * at once rather than making every later login (and the thread pool jose shares) wait without bound.
 */
export class HasherBusyError extends Error {
  constructor() {
    super('password hashing queue is full');
    this.name = 'HasherBusyError';
  }
}

/** Result of checking a password against a stored hash. */
export type PasswordCheck =
  | { readonly ok: true; /** The hash was made with other parameters: re-hash and store the new one. */ readonly needsRehash: boolean }
  | { readonly ok: false };

/**
 * How many argon2 computations may run at once (default for `PasswordHasher.create`). argon2 runs on libuv's thread
 * pool (UV_THREADPOOL_SIZE, default 4), which is shared with WebCrypto (jose verifies every access token there),
 * dns.lookup and fs. With every thread hashing, a burst of logins would stall authenticated proxying until the burst
 * ended; so at least one thread is kept free, and no more hashes run than there are cores (more finish no sooner).
 */
export function defaultHashConcurrency(): number {
  const configured = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  const threads = Number.isInteger(configured) && configured > 0 ? configured : 4;
  return Math.max(1, Math.min(availableParallelism(), threads - 1));
}

/**
 * A counting semaphore: at most `limit` tasks run at once, at most `queueLimit` wait in arrival order, and any more
 * are refused with HasherBusyError (thrown synchronously from run's promise, before any work).
 */
class Gate {
  #free: number;
  readonly #queueLimit: number;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number, queueLimit: number) {
    this.#free = Math.max(1, Math.floor(limit));
    this.#queueLimit = Math.max(0, Math.floor(queueLimit));
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else if (this.#waiting.length >= this.#queueLimit) throw new HasherBusyError();
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, or give it back.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Hashes and verifies passwords. Create it once at start-up with `createPasswordHasher` (which also makes the dummy
 * hash); it holds no per-request state.
 */
export class PasswordHasher {
  readonly #options: argon2.HashOptions & { raw?: false };
  readonly #dummyHash: string;
  readonly #gate: Gate;

  private constructor(params: Argon2Params, dummyHash: string, concurrency: number, queueLimit: number) {
    this.#options = hashOptions(params);
    this.#dummyHash = dummyHash;
    this.#gate = new Gate(concurrency, queueLimit);
  }

  /**
   * Builds a hasher; hashes a random password once so that unknown-email logins cost the same as wrong passwords.
   * `concurrency` caps the argon2 computations running at once (default `defaultHashConcurrency()`); the others queue,
   * up to `params.queue_limit` (default 256). Beyond that hash, verify and verifyDummy reject with HasherBusyError.
   */
  static async create(params: Argon2Params, options: { concurrency?: number } = {}): Promise<PasswordHasher> {
    const dummy = await argon2.hash(randomBytes(32).toString('base64url'), hashOptions(params));
    const queueLimit = params.queue_limit ?? DEFAULT_HASH_QUEUE_LIMIT;
    return new PasswordHasher(params, dummy, options.concurrency ?? defaultHashConcurrency(), queueLimit);
  }

  /** An argon2id PHC string for `password` (NFKC-normalised, so equivalent Unicode input gives the same hash). */
  hash(password: string): Promise<string> {
    return this.#gate.run(() => argon2.hash(normalize(password), this.#options));
  }

  /**
   * Checks `password` against `storedHash` in constant time. A malformed stored hash counts as a mismatch rather
   * than an error, so a corrupt row cannot be told apart from a wrong password.
   */
  async verify(storedHash: string, password: string): Promise<PasswordCheck> {
    let ok: boolean;
    try {
      ok = await this.#gate.run(() => argon2.verify(storedHash, normalize(password)));
    } catch (err) {
      if (err instanceof HasherBusyError) throw err;
      return { ok: false };
    }
    if (!ok) return { ok: false };
    let needsRehash: boolean;
    try {
      needsRehash = argon2.needsRehash(storedHash, {
        memoryCost: this.#options.memoryCost,
        timeCost: this.#options.timeCost,
        parallelism: this.#options.parallelism,
      });
    } catch {
      needsRehash = true;
    }
    return { ok: true, needsRehash: needsRehash || !storedHash.startsWith('$argon2id$') };
  }

  /**
   * Spends the time of one verify on the dummy hash; used when the email is unknown. Resolves, or rejects with
   * HasherBusyError exactly when verify would (so a full queue does not tell unknown emails apart either).
   */
  async verifyDummy(password: string): Promise<void> {
    try {
      await this.#gate.run(() => argon2.verify(this.#dummyHash, normalize(password)));
    } catch (err) {
      // the outcome is irrelevant: only the time spent matters
      if (err instanceof HasherBusyError) throw err;
    }
  }
}

/** Shorthand for `PasswordHasher.create(params)`. */
export function createPasswordHasher(params: Argon2Params): Promise<PasswordHasher> {
  return PasswordHasher.create(params);
}

function hashOptions(params: Argon2Params): argon2.HashOptions & { raw?: false } {
  return { type: argon2.argon2id, memoryCost: params.memory_kib, timeCost: params.iterations, parallelism: params.parallelism };
}

function normalize(password: string): string {
  return password.normalize('NFKC');
}
