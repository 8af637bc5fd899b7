// Requests running on something a reload may retire (a route table's services and pools, a plugin generation's
// instances), so that it is closed only once nothing can use it any more. Hot path: one increment at the start, one
// decrement at the end; no closure or object per request.

/** The requests running on one thing a reload may retire. */
export class RequestCount {
  /** Requests started on it and not done with it yet. */
  running = 0;
  #idle: (() => void) | undefined = undefined;

  /** One request is done with it. Bound once: a logging hook, and a promise's callback. */
  readonly leave = (): void => {
    if (--this.running === 0 && this.#idle !== undefined) this.#idle();
  };

  /** Calls `idle` when no request runs any more (at once if none does); undefined stops watching. */
  whenIdle(idle: (() => void) | undefined): void {
    this.#idle = idle;
    if (idle !== undefined && this.running === 0) idle();
  }

  /** Settles once no request runs any more (at once if none does); for a count no request starts on from now. */
  idle(): Promise<void> {
    return new Promise((resolve) => this.whenIdle(resolve));
  }
}
