// SIGHUP and SIGUSR1 before the gateway listens for them. With no listener, SIGHUP ends the process and SIGUSR1 opens
// Node's inspector, and loading the command line takes from about 100 ms (the bundle) to a second (tsx): so
// bin/portcullis.js listens from its first line and notes what came; the gateway takes over (run-gateway.ts) and acts
// on those, once each; any other command lets go at once (cli.ts), leaving Node's defaults.

/** Set on globalThis by bin/portcullis.js: the signals seen so far, and how to stop listening for them. */
const EARLY = Symbol.for('portcullis.earlySignals');

interface EarlySignals {
  readonly seen: ReadonlySet<string>;
  release(): void;
}

/**
 * Stops bin/portcullis.js's listeners and returns the signals they caught (none in a process bin did not start).
 * Call it once the caller's own listeners are in place: a signal with no listener at all gets Node's default.
 */
export function takeEarlySignals(): ReadonlySet<string> {
  const g = globalThis as { [EARLY]?: EarlySignals };
  const early = g[EARLY];
  if (early === undefined) return new Set();
  delete g[EARLY];
  early.release();
  return early.seen;
}
