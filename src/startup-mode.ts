// Start-up mode: V8 settings that suit the one-shot work of starting a gateway (loading modules, parsing and
// validating the config, building the pipeline) and not the traffic that follows. bin/portcullis.js enters it
// before it imports the command line and leaves on globalThis the flags that end it; cli.ts ends it at once for a
// command that does not run a gateway, the gateway (run-gateway.ts) once it listens, a cluster primary once it has
// forked.
//
// - The young generation does not grow (--semi-space-growth-factor=1). Start-up allocates mostly objects that
//   survive (code, closures, schemas), and V8 answers a high survival rate by doubling the young generation, up to
//   16 MB per semi-space, which an idle gateway then holds for a while (about 6 MB of RSS).
// - No optimising (TurboFan) or baseline (Sparkplug) compilation. Start-up code runs once or a few times: compiling
//   it brings nothing back before the gateway listens, and it pages in the compilers' own code (some 3.4 MB of the
//   node binary for TurboFan) and their output, which an idle gateway then carries. Traffic runs after the mode ends
//   and is compiled as usual: V8 reads these flags each time it decides to tier a function up.
//
// Ending the mode also schedules one compacting garbage collection (compactAfterStartup), as soon as the gateway
// is idle.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Set on globalThis by bin/portcullis.js in start-up mode: the flags that restore V8's defaults. */
const END_FLAGS = Symbol.for('portcullis.startupMode');

/**
 * Restores V8's defaults (idempotent; a no-op in a process bin/portcullis.js did not put in start-up mode) and, for
 * a gateway (`compact`, the default), schedules the compaction of what start-up left behind.
 */
export function endStartupMode({ compact = true }: { compact?: boolean } = {}): void {
  const g = globalThis as { [END_FLAGS]?: readonly string[] };
  const flags = g[END_FLAGS];
  if (flags === undefined) return;
  delete g[END_FLAGS];
  for (const flag of flags) setFlagsFromString(flag);
  if (compact) compactWhenIdle(COMPACT_TRIES, 0, performance.eventLoopUtilization());
}

/** How often the event loop's load is looked at after start-up, and for how many windows (10 s in all). */
const COMPACT_WINDOW_MS = 200;
const COMPACT_TRIES = 50;
/**
 * Idle windows in a row before the compaction runs: one alone may be the moment before the first requests of a
 * gateway restarted under traffic arrive (a balancer's health check, a client reconnecting), or a pause in them.
 */
const IDLE_WINDOWS = 2;
/**
 * The share of a window the event loop may have been busy for the compaction to run: an idle gateway (a readiness
 * probe or two), not one that takes traffic from its first second (a restart under load), whose requests would wait
 * out the pause. Then V8's own memory reducer, which waits for a low allocation rate too, is left to it.
 */
const IDLE_UTILIZATION = 0.1;

/** Compacts the heap at the end of the first IDLE_WINDOWS windows in a row in which the event loop was mostly idle. */
function compactWhenIdle(tries: number, idleSoFar: number, windowStart: EventLoopUtilization): void {
  setTimeout(() => {
    const now = performance.eventLoopUtilization();
    const idle = performance.eventLoopUtilization(now, windowStart).utilization < IDLE_UTILIZATION ? idleSoFar + 1 : 0;
    if (idle >= IDLE_WINDOWS) compactAfterStartup();
    else if (tries > 1) compactWhenIdle(tries - 1, idle, now);
  }, COMPACT_WINDOW_MS).unref();
}

/**
 * One full garbage collection that compacts the old generation, once start-up's garbage is dead. Start-up promotes
 * most of what it allocates (the young generation does not grow, above), and most of that (the config's YAML and
 * schema trees, the module loader's records) is garbage by the time the gateway listens. A full collection alone
 * frees it inside pages V8 keeps; compacting moves the survivors together and returns the emptied pages, about 2 MB
 * of RSS. V8's memory reducer does the same on its own, but only some 8 s after a major collection (a constant in
 * Node 20's V8), and not always for a gateway that stays idle. Pauses the main thread once, for 15-40 ms here.
 * The gc function is V8's own (--expose-gc), taken from a throwaway context: the flag only adds it to contexts
 * created after it is set. Both flags are put back at once.
 */
function compactAfterStartup(): void {
  setFlagsFromString('--expose-gc');
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
    setFlagsFromString('--no-expose-gc');
  }
}
