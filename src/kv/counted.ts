// A KvStore decorator that reports every KvUnavailableError (for the store-error metric) and passes results through.
import { KvUnavailableError, peekBucket, type BucketRule, type KvStore, type TakeResult } from './kv-store.js';

/**
 * Keeps a synchronous store synchronous: `take` and `isRevoked` return the inner store's value as it came, and only
 * a promise gets a rejection handler (shared, made once). Built once at start-up, it sits on the hot path.
 */
export class CountedKvStore implements KvStore {
  readonly #inner: KvStore;
  readonly #onUnavailable: () => void;

  constructor(inner: KvStore, onUnavailable: () => void) {
    this.#inner = inner;
    this.#onUnavailable = onUnavailable;
  }

  readonly #rejected = (err: unknown): never => {
    if (err instanceof KvUnavailableError) this.#onUnavailable();
    throw err;
  };

  /** A promise gets the shared rejection handler; a plain value passes through untouched. */
  #watch<T>(result: T | Promise<T>): T | Promise<T> {
    return result instanceof Promise ? result.catch(this.#rejected) : result;
  }

  take(key: string, rule: BucketRule): TakeResult | Promise<TakeResult> {
    try {
      return this.#watch(this.#inner.take(key, rule));
    } catch (err) {
      return this.#rejected(err);
    }
  }

  peek(key: string, rule: BucketRule): TakeResult | Promise<TakeResult> {
    try {
      return this.#watch(peekBucket(this.#inner, key, rule));
    } catch (err) {
      return this.#rejected(err);
    }
  }

  expectRules(scope: string, rules: readonly BucketRule[]): void {
    this.#inner.expectRules?.(scope, rules);
  }

  refund(key: string, rule: BucketRule): void | Promise<void> {
    try {
      return this.#watch(this.#inner.refund?.(key, rule));
    } catch (err) {
      return this.#rejected(err);
    }
  }

  isRevoked(tokenId: string, subject?: string, issuedAtMs?: number, generation?: number): boolean | Promise<boolean> {
    try {
      return this.#watch(this.#inner.isRevoked(tokenId, subject, issuedAtMs, generation));
    } catch (err) {
      return this.#rejected(err);
    }
  }

  revoke(tokenId: string, expiresAtMs: number, replay?: boolean): Promise<void> {
    return this.#inner.revoke(tokenId, expiresAtMs, replay).catch(this.#rejected);
  }

  revokeSubject(subject: string, revokedAtMs: number, ttlMs: number, generation?: number): Promise<void> {
    return this.#inner.revokeSubject(subject, revokedAtMs, ttlMs, generation).catch(this.#rejected);
  }

  getValue(key: string): Promise<string | undefined> {
    return this.#inner.getValue(key).catch(this.#rejected);
  }

  setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.#inner.setValue(key, value, ttlMs).catch(this.#rejected);
  }

  increment(key: string, ttlMs: number): Promise<number> {
    return this.#inner.increment(key, ttlMs).catch(this.#rejected);
  }

  ping(): Promise<void> {
    return this.#inner.ping().catch(this.#rejected);
  }

  ready(): Promise<void> {
    return (this.#inner.ready?.() ?? this.#inner.ping()).catch(this.#rejected);
  }

  dataLost(): Promise<boolean> {
    return (this.#inner.dataLost?.() ?? Promise.resolve(false)).catch(this.#rejected);
  }

  /**
   * Not counted: a look the change poller makes once a minute after the marker answered, which a managed Redis's ACL
   * often refuses (INFO: NOPERM) on a server that serves every request; counted, the store-error metric grew once a
   * minute there. A Redis that fails is counted by the poller's own marker read and the requests.
   */
  evictionPolicy(): Promise<string | undefined> {
    return this.#inner.evictionPolicy?.() ?? Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
