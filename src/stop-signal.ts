// SIGTERM and SIGINT over a gateway process's whole life, start-up included. The proxy port opens before start-up
// ends (the admin listener, which loads its modules first, comes after it), and a stop signal in between used to find
// no listener: Node's default action ended the process and cut the requests it was already serving. Listened for
// from the start now; what a signal does depends on how far start-up got:
// - nothing listens yet: the process ends at once, as by Node's default action (nothing to drain, and start-up may
//   be waiting on a store that does not answer, which a stop must not wait for);
// - the proxy port is open: the stop is remembered, and the gateway drains as soon as start-up is over;
// - started: the action of the process's kind (drain, or force a stop already under way);
// - start-up failed (wherever it failed): as before anything listened (its requests are cut, it exits 1 after its
//   clean-up, which a stop need not wait for), once it has printed what start-up failed on.
import { constants } from 'node:os';
import { whenFlushed } from './stream-flushed.js';

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type StopSignalName = (typeof STOP_SIGNALS)[number];

/**
 * How many remembered signals are acted on once started: the first starts the stop, a second forces it, as two
 * signals would after start-up; any more would only repeat the second.
 */
const MAX_REMEMBERED = 2;

/** How long a stop that ends a failed start-up waits for its printed failure to leave through a full stderr pipe. */
const REPORT_DRAIN_BOUND_MS = 1000;

export class StopSignal {
  #listening = false;
  #remembered = 0;
  #first: StopSignalName | undefined;
  #action: (() => void) | undefined;
  #report: (() => void) | undefined;
  #ending = false;
  readonly #onSignal = (signal: StopSignalName): void => this.#fire(signal);

  constructor() {
    for (const signal of STOP_SIGNALS) process.on(signal, this.#onSignal);
  }

  /** The proxy port accepts connections: a stop signal from now on is kept until start-up is over, then acted on. */
  listening(): void {
    this.#listening = true;
  }

  /**
   * Start-up failed: a stop that came while it ran, and any from now on, ends the process at once, after `report`
   * (which prints what start-up failed on: the process ends before its caller could).
   */
  startFailing(report: () => void): void {
    this.#listening = false;
    this.#report = report;
    if (this.#first !== undefined && this.#action === undefined) this.#endAsByDefault(this.#first);
  }

  /**
   * The failed start-up has reached its caller, which prints its failure itself and exits: a stop no longer prints
   * it. True when a stop is already ending the process (its line printed, waiting for stderr to take it): the caller
   * then does neither.
   */
  startFailed(): boolean {
    this.#report = undefined;
    return this.#ending;
  }

  /** Start-up is over: `action` runs at each stop signal from now on, and now for those that came while starting. */
  set(action: () => void): void {
    this.#action = action;
    const remembered = Math.min(this.#remembered, MAX_REMEMBERED);
    this.#remembered = 0;
    for (let i = 0; i < remembered; i++) action();
  }

  #fire(signal: StopSignalName): void {
    if (this.#action !== undefined) this.#action();
    else if (this.#listening) {
      this.#first ??= signal;
      this.#remembered++;
    } else this.#endAsByDefault(signal);
  }

  /**
   * Ends the process as Node's default action would have: by the signal itself, so a supervisor sees what it sees
   * of any process stopped before it served. With this process's listeners gone the signal has its default action
   * again, unless some other code listens for it, and then the exit code a shell gives a process a signal ended.
   */
  #endAsByDefault(signal: StopSignalName): void {
    if (this.#ending) return;
    this.#ending = true;
    for (const name of STOP_SIGNALS) process.off(name, this.#onSignal);
    const end = (): void => {
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      process.exit(128 + constants.signals[signal]);
    };
    const report = this.#report;
    if (report === undefined) return end();
    try {
      report();
    } finally {
      // Its line, written to a pipe whose reader is behind, is not lost to the signal (bounded: a stop is due).
      whenFlushed(process.stderr, end, REPORT_DRAIN_BOUND_MS);
    }
  }
}
