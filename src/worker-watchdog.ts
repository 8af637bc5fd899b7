// The primary's watch over the workers that serve: each is asked every second to answer from its event loop, and one
// that has not answered for WATCHDOG_MISSED_TICKS seconds is reported stalled. A worker whose event loop stopped (a
// plugin's endless loop, a regular expression backtracking for good) keeps its share of the connections node:cluster's
// primary hands out by turns, and every one of them hangs: the primary's start deadline and reload rounds catch such
// a worker only while it starts or reloads. Envoy's watchdog does the same for its threads (its kill timeout).
//
// Misses are counted in the primary's own ticks, not read off the clock: a primary that was itself stopped (a
// suspended process, a long GC) sends no pings meanwhile, so its own pause never makes a worker look stalled.
import type { Worker } from 'node:cluster';

/** primary → worker: answer from your event loop. */
export const WATCHDOG_PING = 'portcullis:ping';
/** worker → primary: my event loop runs. */
export const WATCHDOG_PONG = 'portcullis:pong';

/** How often a serving worker is asked. */
export const WATCHDOG_TICK_MS = 1_000;
/**
 * Ticks without an answer before a worker is called stalled: 10 s. Far above any pause a working gateway has (a
 * major GC, a large synchronous SQLite read take well under a second), so a busy worker is never killed for it.
 */
export const WATCHDOG_MISSED_TICKS = 10;

interface Watched {
  readonly worker: Worker;
  /** A ping is out, not answered yet. */
  awaiting: boolean;
  /** Ticks since that ping went out. */
  missed: number;
}

export class WorkerWatchdog {
  readonly #watched = new Map<number, Watched>();
  readonly #onStalled: (worker: Worker, silentMs: number) => void;
  readonly #busy: (worker: Worker) => boolean;
  readonly #missedTicks: number;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `onStalled` is called once per stalled worker, which is no longer watched from then on. `busy`: a worker the
   * primary waits on for something with a deadline of its own (a reload round's PREPARE, APPLY or COMMIT, bounded by
   * the apply deadline): not counted while it is, so a reload whose plugin works synchronously for longer than the
   * watchdog's bound is judged by its round (refused, the worker replaced), never killed here mid-round, which made
   * the round take every worker for gone and accept the config none had prepared.
   */
  constructor(onStalled: (worker: Worker, silentMs: number) => void, busy: (worker: Worker) => boolean = () => false, missedTicks = WATCHDOG_MISSED_TICKS) {
    this.#onStalled = onStalled;
    this.#busy = busy;
    this.#missedTicks = missedTicks;
  }

  /** Watches a worker from now on (once its gateway serves). */
  watch(worker: Worker): void {
    this.#watched.set(worker.id, { worker, awaiting: false, missed: 0 });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), WATCHDOG_TICK_MS);
      this.#timer.unref(); // never what keeps the primary alive
    }
  }

  /** Stops watching a worker (it exited, or is being stopped). */
  forget(workerId: number): void {
    this.#watched.delete(workerId);
  }

  /** True when `message` was a watchdog answer (consumed here). */
  onMessage(worker: Worker, message: unknown): boolean {
    if ((message as { type?: unknown } | null)?.type !== WATCHDOG_PONG) return false;
    const watched = this.#watched.get(worker.id);
    if (watched !== undefined) {
      watched.awaiting = false;
      watched.missed = 0;
    }
    return true;
  }

  /** Stops every watch (the gateway stops: draining workers are bounded by the stop's own deadline). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watched.clear();
  }

  #tick(): void {
    for (const watched of [...this.#watched.values()]) {
      if (watched.worker.isDead()) {
        this.#watched.delete(watched.worker.id);
        continue;
      }
      if (this.#busy(watched.worker)) {
        watched.awaiting = false;
        watched.missed = 0;
        continue;
      }
      if (watched.awaiting) {
        watched.missed += 1;
        if (watched.missed >= this.#missedTicks) {
          this.#watched.delete(watched.worker.id);
          this.#onStalled(watched.worker, watched.missed * WATCHDOG_TICK_MS);
        }
        continue;
      }
      watched.awaiting = true;
      // A worker whose channel is gone cannot answer: its exit, which follows, is handled by the primary.
      watched.worker.send({ type: WATCHDOG_PING }, undefined, () => undefined);
    }
  }
}

/** The worker's side: answers a ping from its event loop. True when `message` was one. */
export function answerWatchdog(message: unknown): boolean {
  if ((message as { type?: unknown } | null)?.type !== WATCHDOG_PING) return false;
  if (process.connected) process.send?.({ type: WATCHDOG_PONG }, undefined, undefined, () => undefined);
  return true;
}
