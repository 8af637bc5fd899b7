// Password hashing with argon2id (in a low-priority child process, see hash-process.ts) and a timing-equalising
// dummy verify.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type * as argon2 from 'argon2';
import { HashProcess, HashProcessLostError, HashProcessStartError, inProcessEngine, type Argon2Engine } from './hash-process.js';
import { isWellFormedText, normalizedPassword } from './validation.js';

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
  /** The longest a hash or verify may take, its wait for a slot included, before HasherBusyError (ms; default 30 s). */
  readonly timeout?: number;
}

/** Default of `middleware.auth.argon2.queue_limit`. */
export const DEFAULT_HASH_QUEUE_LIMIT = 256;
/** Default of `middleware.auth.argon2.timeout`, in ms. */
export const DEFAULT_HASH_TIMEOUT_MS = 30_000;

/**
 * Seconds a client is asked to wait when the argon2 queue is full (a flood passes quickly, or is throttled); the auth
 * API and the admin API both answer HasherBusyError with it.
 */
export const HASHER_BUSY_RETRY_AFTER_SECONDS = 1;

/**
 * The cause of a HasherBusyError when a hash or verify took longer than `middleware.auth.argon2.timeout`, its wait
 * for a slot included: the host's CPU is saturated (the hashing process runs at nice 19, so it is the first to
 * starve) or a flood keeps the queue long.
 */
export class HashTimedOutError extends Error {
  constructor(timeoutMs: number) {
    super(`password hashing took longer than ${timeoutMs} ms`);
    this.name = 'HashTimedOutError';
  }
}

/**
 * Thrown instead of queueing when `queue_limit` hashes already wait: a login flood then gets 503 with Retry-After
 * at once rather than making every later login (and the thread pool jose shares) wait without bound. And when a hash
 * took longer than `timeout`.
 */
export class HasherBusyError extends Error {
  /**
   * `cause`: the hashing process could not be started (HashProcessStartError) or was lost twice under one call
   * (HashProcessLostError), or the hash timed out (HashTimedOutError), rather than a full queue.
   */
  constructor(cause?: HashProcessStartError | HashProcessLostError | HashTimedOutError) {
    super(
      cause === undefined
        ? 'password hashing queue is full'
        : cause instanceof HashTimedOutError
          ? 'password hashing timed out'
          : 'password hashing process unavailable',
      cause === undefined ? undefined : { cause },
    );
    this.name = 'HasherBusyError';
  }
}

/**
 * A hashing process that could not be started (descriptors used up), or that was lost under a call and again under
 * its second try, as HasherBusyError: a 503 with Retry-After for a register and a login alike. Taken for a mismatch,
 * it refused the right password with 401 for as long as the spike lasted.
 */
function asBusy(err: unknown): unknown {
  return err instanceof HashProcessStartError || err instanceof HashProcessLostError ? new HasherBusyError(err) : err;
}

/**
 * A password with an unpaired UTF-16 surrogate reached hash(): the request schemas refuse it first (400), so this is a
 * caller that skipped them. Hashing it would encode the surrogate as U+FFFD and make a hash other passwords match.
 */
export class IllFormedPasswordError extends Error {
  constructor() {
    super('password is not well-formed Unicode text');
    this.name = 'IllFormedPasswordError';
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
 * are refused with HasherBusyError (thrown synchronously from run's promise, before any work). A task's caller waits
 * at most `timeoutMs` in all, its wait for a slot included; then HasherBusyError (HashTimedOutError). Without that
 * bound a login on a CPU-saturated host waited for the nice-19 hashing process as long as the host stayed saturated
 * (203 s measured at load 15) instead of getting a 503 it could retry. A task already running keeps its slot until
 * it ends, so no more hashes run at once than `limit` whatever their callers stopped waiting for.
 */
class Gate {
  #free: number;
  readonly #queueLimit: number;
  readonly #timeoutMs: number;
  /** Waiting starts in arrival order; a Set, so a waiter that times out leaves in O(1) (up to queue_limit 100 000). */
  readonly #waiting = new Set<() => void>();

  constructor(limit: number, queueLimit: number, timeoutMs: number) {
    this.#free = Math.max(1, Math.floor(limit));
    this.#queueLimit = Math.max(0, Math.floor(queueLimit));
    this.#timeoutMs = timeoutMs;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free === 0 && this.#waiting.size >= this.#queueLimit) throw new HasherBusyError();
    return new Promise<T>((resolve, reject) => {
      // Infinity: no bound (the CLI's: an operator's one-off command, which could not end before its hash anyway).
      const timer = Number.isFinite(this.#timeoutMs)
        ? setTimeout(() => {
            this.#waiting.delete(start);
            reject(new HasherBusyError(new HashTimedOutError(this.#timeoutMs)));
          }, this.#timeoutMs)
        : undefined;
      const start = (): void => {
        let work: Promise<T>;
        try {
          work = task();
        } catch (err) {
          work = Promise.reject(err);
        }
        void work.then(this.#release, this.#release);
        // After a timeout these settle nothing: the promise was rejected already.
        work.then(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err);
          },
        );
      };
      if (this.#free > 0) {
        this.#free--;
        start();
      } else this.#waiting.add(start);
    });
  }

  /** Hands the slot straight to the next waiter, or gives it back. */
  readonly #release = (): void => {
    const next = this.#waiting.values().next().value;
    if (next !== undefined) {
      this.#waiting.delete(next);
      next();
    } else this.#free++;
  };
}

/**
 * Hashes and verifies passwords. Create it once at start-up with `createPasswordHasher` (which also makes the dummy
 * hash); it holds no per-request state.
 */
export class PasswordHasher {
  readonly #options: argon2.HashOptions & { raw?: false };
  readonly #engine: Argon2Engine;
  /**
   * What an unknown email's password is verified against: made here, at start-up, and never recomputed (see
   * dummyPhcString). Nothing can fail while making it, so no failure can be remembered either: a lazily made dummy
   * whose first hash was refused (queue full) or lost (the hashing process killed) stayed failed, and every later
   * unknown-email login got 503 at once, or an answer without argon2 work, telling it from a wrong password.
   */
  readonly #dummyHash: string;
  readonly #gate: Gate;

  private constructor(params: Argon2Params, engine: Argon2Engine, concurrency: number, queueLimit: number) {
    this.#options = hashOptions(params);
    this.#engine = engine;
    this.#gate = new Gate(concurrency, queueLimit, params.timeout ?? DEFAULT_HASH_TIMEOUT_MS);
    this.#dummyHash = dummyPhcString(params);
  }

  /**
   * Builds a hasher and its dummy hash, so that unknown-email logins cost the same as wrong passwords (without
   * hashing anything: start-up does not start the hashing process). `concurrency` caps the argon2 computations
   * running at once (default `defaultHashConcurrency()`); the others queue, up to `params.queue_limit` (default 256).
   * Beyond that hash, verify and verifyDummy reject with HasherBusyError.
   */
  static async create(params: Argon2Params, options: { concurrency?: number } = {}): Promise<PasswordHasher> {
    // PORTCULLIS_HASH_IN_PROCESS=1 hashes on this process's thread pool: only to measure what the child saves.
    const engine = process.env.PORTCULLIS_HASH_IN_PROCESS === '1' ? await inProcessEngine() : new HashProcess();
    const queueLimit = params.queue_limit ?? DEFAULT_HASH_QUEUE_LIMIT;
    return new PasswordHasher(params, engine, options.concurrency ?? defaultHashConcurrency(), queueLimit);
  }

  /** An argon2id PHC string for `password` (NFKC-normalised, so equivalent Unicode input gives the same hash). */
  hash(password: string): Promise<string> {
    if (!isWellFormedText(password)) return Promise.reject(new IllFormedPasswordError());
    return this.#gate.run(() => this.#engine.hash(normalize(password), this.#options)).catch((err: unknown) => {
      throw asBusy(err);
    });
  }

  /**
   * Checks `password` against `storedHash` in constant time. A malformed stored hash counts as a mismatch rather
   * than an error, so a corrupt row cannot be told apart from a wrong password.
   */
  async verify(storedHash: string, password: string): Promise<PasswordCheck> {
    // Never a match: its UTF-8 form would be U+FFFD's, which a hash made before such input was refused can hold.
    if (!isWellFormedText(password)) return { ok: false };
    // A hash in other parameters than the current ones (made before `argon2` was changed, and not yet replaced by a
    // login) costs what those cost, while an unknown email's dummy costs the current ones: after raising memory_kib
    // or iterations, a wrong password for a user who had not logged in since was answered many times faster than an
    // unknown email, telling registered emails apart. The dummy is run beside such a verify, so no answer comes
    // before the current parameters' time.
    const stale = needsRehash(storedHash, this.#options);
    const matched = this.#gate.run(() => this.#engine.verify(storedHash, normalize(password))).then(
      (ok) => ok,
      (err: unknown) => {
        const busy = asBusy(err);
        if (busy instanceof HasherBusyError) throw busy;
        return false;
      },
    );
    const [ok] = await Promise.all([matched, stale ? this.verifyDummy(password) : undefined]);
    if (!ok) return { ok: false };
    return { ok: true, needsRehash: stale };
  }

  /**
   * Spends the time of one verify on the dummy hash; used when the email is unknown. Resolves, or rejects with
   * HasherBusyError exactly when verify would: only while the queue is full (so a full queue does not tell unknown
   * emails apart either).
   */
  async verifyDummy(password: string): Promise<void> {
    try {
      await this.#gate.run(() => this.#engine.verify(this.#dummyHash, normalize(password)));
    } catch (err) {
      const busy = asBusy(err);
      if (busy instanceof HasherBusyError) throw busy;
      // The outcome is irrelevant, only the time spent matters (a malformed dummy cannot be; a lost process is
      // answered as for a known email: 503, above).
    }
  }
}

/** Shorthand for `PasswordHasher.create(params)`. */
export function createPasswordHasher(params: Argon2Params): Promise<PasswordHasher> {
  return PasswordHasher.create(params);
}

/** argon2's own `type` value for argon2id (the module itself is only loaded by the hashing process). */
const ARGON2ID = 2;

/**
 * True when a verified PHC string was made with other parameters than `options` (or not with argon2id v1.3), the
 * same rule as argon2's needsRehash, read here so this process does not load argon2 to parse a string.
 */
function needsRehash(storedHash: string, options: argon2.HashOptions): boolean {
  const [, type, version, params] = storedHash.split('$');
  if (type !== 'argon2id' || version !== 'v=19' || params === undefined) return true;
  const values = new Map(params.split(',').map((pair) => pair.split('=') as [string, string]));
  return (
    Number(values.get('m')) !== options.memoryCost ||
    Number(values.get('t')) !== options.timeCost ||
    Number(values.get('p')) !== options.parallelism
  );
}

/**
 * A PHC string in the configured parameters with a random salt and a random 32-byte digest (the lengths argon2's hash
 * gives every stored hash). argon2's verify recomputes the digest from the string's own m, t, p, salt and digest
 * length, so checking a password against it costs exactly one verify of a stored hash, and it matches no password.
 */
function dummyPhcString(params: Argon2Params): string {
  // PHC strings carry base64 without padding.
  const b64 = (bytes: number): string => randomBytes(bytes).toString('base64').replace(/=+$/, '');
  return `$argon2id$v=19$m=${params.memory_kib},t=${params.iterations},p=${params.parallelism}$${b64(16)}$${b64(32)}`;
}

function hashOptions(params: Argon2Params): argon2.HashOptions & { raw?: false } {
  return { type: ARGON2ID as typeof argon2.argon2id, memoryCost: params.memory_kib, timeCost: params.iterations, parallelism: params.parallelism };
}

function normalize(password: string): string {
  return normalizedPassword(password);
}
