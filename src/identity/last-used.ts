// Last-used times of API keys, gathered in memory on the request path and written in batches off it.
import type { Logger } from 'pino';
import { describeCause } from '../errors.js';
import type { UserStore } from '../store/user-store.js';

export interface LastUsedOptions {
  readonly store: Pick<UserStore, 'recordApiKeyUse'>;
  readonly logger: Pick<Logger, 'warn'>;
  /** Time between writes, ms. Default 10 000: `last_used_at` is at most that stale. */
  readonly flushIntervalMs?: number;
}

/**
 * `note` is a Map write and never waits for the database; a timer writes the batch (one statement per flush in
 * PostgreSQL). A failed write keeps the times for the next flush. `close` waits for a running write, then writes what is left.
 */
export class LastUsedRecorder {
  readonly #o: LastUsedOptions;
  #pending = new Map<string, Date>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(options: LastUsedOptions) {
    this.#o = options;
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 10_000);
    this.#timer.unref();
  }

  /** Called on the request path: remembers that key `id` was used at `nowMs`. */
  note(id: string, nowMs: number): void {
    const seen = this.#pending.get(id);
    if (seen === undefined || seen.getTime() < nowMs) this.#pending.set(id, new Date(nowMs));
  }

  /** Writes what was noted since the last flush; concurrent calls join the running one. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#pending.size === 0) return Promise.resolve();
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = this.#o.store
      .recordApiKeyUse(batch)
      .catch((err: unknown) => {
        this.#o.logger.warn({ cause: describeCause(err) }, 'api key last-used write failed');
        for (const [id, at] of batch) if (!this.#pending.has(id)) this.#pending.set(id, at);
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    // A write already running took its batch before the uses noted since: flush() alone would only join it.
    await this.#flushing;
    await this.flush();
  }
}
