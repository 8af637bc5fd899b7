// Keeps start-up's allocation burst from growing V8's young generation. Loading and compiling the modules allocates
// mostly objects that survive (code, closures, schemas), and V8 answers a high survival rate by doubling the young
// generation, up to 16 MB per semi-space, which an idle gateway then holds for a while (about 6 MB of RSS). bin/
// portcullis.js sets the growth factor to 1 before the first import; the gateway restores V8's default once it
// listens, so traffic grows the young generation as usual. setFlagsFromString is read by V8 at the next growth.
import { setFlagsFromString } from 'node:v8';

/** V8's default --semi-space-growth-factor. */
const DEFAULT_GROWTH_FACTOR = 2;

/** Set by bin/portcullis.js on globalThis when it held the young generation. */
const HELD = Symbol.for('portcullis.heldYoungGeneration');

/** Lets the young generation grow again (idempotent; a no-op when bin/portcullis.js did not hold it). */
export function releaseYoungGeneration(): void {
  const g = globalThis as { [HELD]?: boolean };
  if (g[HELD] !== true) return;
  g[HELD] = false;
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}
