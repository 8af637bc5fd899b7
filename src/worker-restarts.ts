// When to restart a crashed worker of a multi-worker gateway: exponential backoff, and a give-up at start-up. Pure.

/** Tunables of the restart policy; every field has a default. */
export interface WorkerRestartOptions {
  /** Delay before the first restart after a crash, ms (default 100). Doubles with each crash in a row. */
  readonly baseDelayMs?: number;
  /** Longest delay between restarts, ms (default 10 000). */
  readonly maxDelayMs?: number;
  /**
   * Crashes in a row of workers that never listened after which the primary gives up (default 5), unless the gateway
   * started complete once and another worker serves (see `exited`).
   */
  readonly giveUpAfter?: number;
  /** A worker that listened and lived this long ends a crash streak: the next restart waits baseDelayMs (default 30 000). */
  readonly stableAfterMs?: number;
}

/** What to do about a worker that exited. */
export type RestartDecision =
  /** `failing`: start-ups have failed giveUpAfter times in a row, and the gateway goes on with the workers it has. */
  | { readonly action: 'restart'; readonly delayMs: number; readonly failing?: true }
  /**
   * Workers keep dying before they listen (bad port, unreachable store, broken config) and none serves: the gateway
   * cannot start, and restarting cannot help.
   */
  | { readonly action: 'give-up'; readonly crashes: number };

/**
 * The primary's bookkeeping of worker crashes. `listening()` when a worker starts serving, `exited()` when one dies
 * unasked; it answers how long to wait before forking a replacement, or that start-up is failing for good.
 */
export class WorkerRestarts {
  readonly #base: number;
  readonly #max: number;
  readonly #giveUpAfter: number;
  readonly #stableAfter: number;
  /** Crashes in a row of workers that never listened, since one last did. */
  #startupCrashes = 0;
  /** Crashes in a row of short-lived workers: the backoff exponent. */
  #streak = 0;

  constructor(options: WorkerRestartOptions = {}) {
    this.#base = options.baseDelayMs ?? 100;
    this.#max = options.maxDelayMs ?? 10_000;
    this.#giveUpAfter = options.giveUpAfter ?? 5;
    this.#stableAfter = options.stableAfterMs ?? 30_000;
  }

  /** A worker is listening: start-up works, so the earlier start-up crashes no longer count. */
  listening(): void {
    this.#startupCrashes = 0;
  }

  /**
   * A worker exited on its own after `uptimeMs`; `listened` says whether it ever served. `keepServing`: the gateway
   * started with all its workers once and another worker serves now. Then replacements that fail at start-up are
   * restarted for as long as it takes (backing off to the cap), never given up on: a PostgreSQL outage or a port
   * taken meanwhile made one crash of one worker (an OOM kill) stop every healthy worker too, 13 s later, a whole
   * gateway down for a partial outage; nginx's master goes on restarting a worker it cannot start while the others
   * serve. A gateway that never started complete (its admin port taken at start) is still given up on.
   */
  exited(listened: boolean, uptimeMs: number, keepServing = false): RestartDecision {
    let failing = false;
    if (!listened) {
      this.#startupCrashes++;
      if (this.#startupCrashes >= this.#giveUpAfter) {
        if (!keepServing) return { action: 'give-up', crashes: this.#startupCrashes };
        failing = true;
      }
    }
    // Only a worker that served for a while ends the streak; a slow start-up that fails is still a crash in a row.
    if (listened && uptimeMs >= this.#stableAfter) this.#streak = 0;
    const delayMs = Math.min(this.#max, this.#base * 2 ** Math.min(this.#streak, 30));
    this.#streak++;
    return failing ? { action: 'restart', delayMs, failing: true } : { action: 'restart', delayMs };
  }
}
