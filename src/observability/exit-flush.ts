// What a log destination must write out as the process exits, however it exits: process.exit() from anywhere,
// node:cluster ending a worker whose primary died, the end of the event loop.

/** Anything with a synchronous flush for the moment of exit. */
export interface FlushedAtExit {
  flushAtExit(): void;
}

const targets = new Set<WeakRef<FlushedAtExit>>();
let listening = false;

/**
 * Flushes `target` as the process exits. One 'exit' listener for all, each target held weakly, so an embedding host
 * that starts gateway after gateway keeps neither its writers nor a growing listener list.
 */
export function flushAtExit(target: FlushedAtExit): void {
  if (!listening) {
    listening = true;
    process.on('exit', () => {
      for (const ref of targets) ref.deref()?.flushAtExit();
    });
  }
  for (const ref of targets) if (ref.deref() === undefined) targets.delete(ref);
  targets.add(new WeakRef(target));
}
