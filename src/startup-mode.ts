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
// Ending the mode also schedules one compacting garbage collection (compactAfterStartup), shortly after.
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
  if (compact) setTimeout(compactAfterStartup, COMPACT_DELAY_MS).unref();
}

/**
 * How long after the end of start-up the heap is compacted: past the first requests a supervisor's readiness probe
 * sends (start-up time is measured to the first 200), before anyone reads the idle gateway's memory.
 */
const COMPACT_DELAY_MS = 200;

/**
 * One full garbage collection that compacts the old generation, once start-up's garbage is dead. Start-up promotes
 * most of what it allocates (the young generation does not grow, above), and most of that (the config's YAML and
 * schema trees, the module loader's records) is garbage by the time the gateway listens. A full collection alone
 * frees it inside pages V8 keeps; compacting moves the survivors together and returns the emptied pages, about 2 MB
 * of RSS. V8's memory reducer does the same on its own, but only some 8 s after a major collection (a constant in
 * Node 20's V8), and not always for a gateway that stays idle. Takes 10-30 ms of the main thread, once.
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
