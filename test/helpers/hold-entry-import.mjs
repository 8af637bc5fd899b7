// Loaded into a spawned `portcullis` with `node --import <this file>`: holds the process while bin/portcullis.js imports
// the command line (src/cli.ts, dist/cli.js or the bundle), that is after bin's own code has run and before any of the
// command line's. A test uses the hold to act inside that window, e.g. to send signals (review-lifecycle-early-signals).
//
// The hold is a module loader hook (node:module register), which runs on its own thread: when the first module under
// src/ or dist/ is resolved, it creates `held` in PORTCULLIS_TEST_HOLD_DIR and waits until the test creates `go` there.
// Plain JavaScript so that it loads before tsx does.
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.PORTCULLIS_TEST_HOLD_DIR;
if (dir === undefined) throw new Error('hold-entry-import.mjs needs PORTCULLIS_TEST_HOLD_DIR');

if (isMainThread) register(import.meta.url);

// The checkout's root, through package.json's real path: run from npm test's compiled mirror (.test-build/, whose
// package.json, bin/ and dist/ link to the checkout's), the command line resolves to the checkout's files.
const root = pathToFileURL(`${dirname(realpathSync(fileURLToPath(new URL('../../package.json', import.meta.url))))}/`).href;
const commandLine = [`${root}src/`, `${root}dist/`];
let held = false;

/** The resolve hook: waits for `go` before the first module of the command line is resolved. */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (!held && commandLine.some((prefix) => resolved.url.startsWith(prefix))) {
    held = true;
    writeFileSync(join(dir, 'held'), '');
    while (!existsSync(join(dir, 'go'))) await sleep(10);
  }
  return resolved;
}
