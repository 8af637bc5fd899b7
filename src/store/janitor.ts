// SessionJanitor: deletes expired refresh tokens on a timer (config `middleware.auth.session_cleanup_interval`).
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeCause } from '../errors.js';
import type { UserStore } from './user-store.js';

/** How long identity change-log rows are kept (the poller needs minutes; the dashboard's recent actions, less). */
export const CHANGE_LOG_RETENTION_MS = 7 * 86_400_000;

/**
 * Rows one janitor step deletes. SQLite runs each statement on the event loop: 2,000 rows are about 10 ms there, and
 * the loop serves requests between steps (one DELETE of 500,000 expired sessions held every request for 3 s). On
 * PostgreSQL each step is a short statement, far inside the statement timeout a million-row DELETE outlived.
 */
export const JANITOR_BATCH = 2_000;

/** What the janitor needs. */
export interface SessionJanitorOptions {
  readonly store: Pick<UserStore, 'deleteExpired'> & Partial<Pick<UserStore, 'pruneChanges'>>;
  /** Milliseconds between runs (config `middleware.auth.session_cleanup_interval`, default 1 h). */
  readonly intervalMs: number;
  readonly logger: Pick<Logger, 'debug' | 'warn'>;
  /**
   * How long change-log rows are kept (default CHANGE_LOG_RETENTION_MS). A gateway re-reads the log at start for as
   * long as an access token is accepted, to re-apply logouts and operator actions on the memory store: with tokens
   * that live longer than a week, the rows must live as long (features.ts passes the longer of the two).
   */
  readonly changeRetentionMs?: number;
  /**
   * How long a single-session logout's row (TOKEN_REVOCATION) is kept: as long as an access token is accepted
   * (features.ts passes that). Default: as long as the other rows.
   */
  readonly tokenRevocationRetentionMs?: number;
  /** Clock, for tests (default Date.now). */
  readonly now?: () => number;
  /** Rows deleted per step (default JANITOR_BATCH). */
  readonly batchSize?: number;
}

/**
 * Removes expired sessions periodically. `start()` schedules runs on an unref'd timer (it never keeps the process
 * alive); `stop()` cancels them and waits for a run in progress. A failed run is logged and retried next interval.
 */
export class SessionJanitor {
  readonly #options: SessionJanitorOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  /** Set by stop(): a run in progress ends after its current step (the rest goes at the next start's runs). */
  #stopping = false;

  constructor(options: SessionJanitorOptions) {
    this.#options = options;
  }

  /** Starts the timer; the first run happens one interval from now. Calling it twice does nothing. */
  start(): void {
    if (this.#timer) return;
    this.#stopping = false;
    this.#timer = setInterval(() => void this.runOnce(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /**
   * Deletes the tokens expired by now and resolves with how many (0 when the store failed). Runs never overlap:
   * a call during a run joins it.
   */
  runOnce(): Promise<number> {
    if (this.#running) return this.#running;
    const now = new Date((this.#options.now ?? Date.now)());
    const store = this.#options.store;
    this.#running = this.#inSteps((limit) => store.deleteExpired(now, limit))
      .then(async (count) => {
        // The identity change log doubles as a short audit trail: a week (or a token's life), then it goes.
        const retention = this.#options.changeRetentionMs ?? CHANGE_LOG_RETENTION_MS;
        const tokenRetention = this.#options.tokenRevocationRetentionMs ?? retention;
        const prune = store.pruneChanges?.bind(store);
        if (prune) {
          const before = new Date(now.getTime() - retention);
          const tokensBefore = new Date(now.getTime() - tokenRetention);
          await this.#inSteps((limit) => prune(before, tokensBefore, limit));
        }
        this.#options.logger.debug({ deleted: count }, 'expired sessions removed');
        return count;
      })
      .catch((err: unknown) => {
        this.#options.logger.warn({ cause: describeCause(err) }, 'expired session cleanup failed');
        return 0;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /**
   * Runs `step` (a bounded delete) until it deletes fewer rows than asked, yielding to the event loop between steps;
   * resolves with the total.
   */
  async #inSteps(step: (limit: number) => Promise<number>): Promise<number> {
    const limit = this.#options.batchSize ?? JANITOR_BATCH;
    let total = 0;
    for (;;) {
      const started = performance.now();
      const deleted = await step(limit);
      total += deleted;
      if (deleted < limit || this.#stopping) return total;
      // As long a pause as the step took: a request needs several turns of the event loop (accept, read, the
      // upstream's connect, its answer), and with a bare setImmediate a step ran in each of them (100-300 ms per
      // request on SQLite). Half the loop at most goes to the janitor; a run takes twice its work.
      await delay(Math.max(1, performance.now() - started));
    }
  }

  /** Stops the timer and waits for a run in progress (call before closing the store). */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
