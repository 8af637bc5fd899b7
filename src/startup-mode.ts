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
import { setFlagsFromString } from 'node:v8';

/** Set on globalThis by bin/portcullis.js in start-up mode: the flags that restore V8's defaults. */
const END_FLAGS = Symbol.for('portcullis.startupMode');

/** Restores V8's defaults (idempotent; a no-op in a process bin/portcullis.js did not put in start-up mode). */
export function endStartupMode(): void {
  const g = globalThis as { [END_FLAGS]?: readonly string[] };
  const flags = g[END_FLAGS];
  if (flags === undefined) return;
  delete g[END_FLAGS];
  for (const flag of flags) setFlagsFromString(flag);
}
