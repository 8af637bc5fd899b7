#!/usr/bin/env node
// Entry point of the `portcullis` command. Runs the compiled dist/ when it is up to date with src/ (`npm ci` builds
// it through `prepare`; a built image has no src/ at all), otherwise the TypeScript sources through tsx, so an edit
// under src/ is never shadowed by a stale build. tsx costs about a second of start-up and 40 MB, dist/ neither.
// Of dist/, the bundle (dist/bundle/, scripts/bundle.mjs) starts about 100 ms sooner than the ~430 files dist/cli.js loads.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
// Node's own modules a gateway loads, imported before start-up mode sets V8 flags (below). Node compiles its modules
// from a code cache built into the binary, and V8 accepts that cache only under the flags it was made with: each of
// these loaded after setFlagsFromString() would be compiled from source instead. The order follows Node's. Not
// node:cluster, which reads NODE_CLUSTER_SCHED_POLICY when it loads: cli.ts may read that from .env first.
import 'node:net';
import 'node:crypto';
import 'node:tls';
import 'node:os';
import 'node:dgram';
import 'node:child_process';
import 'node:tty';
import 'node:http';
import 'node:https';
import 'node:assert';
import 'node:http2';
import 'node:perf_hooks';
import 'node:worker_threads';
import 'node:dns';
import 'node:fs/promises';
import 'node:stream/promises';
import 'node:diagnostics_channel';
import 'node:module';
import 'node:process';
import 'node:util';

// Start-up mode (src/startup-mode.ts: its flags, and why). Entered here, before the command line is imported; ended
// by cli.ts at once for a command that does not run a gateway (some run for long: demo-backends), and by the gateway
// once it listens. Not entered by a process started with V8 flags of its own on these settings (node --no-opt, --noopt,
// --jitless, ...): ending the mode would override them.
const ownV8Flags =
  /--(no[-_]?)?(jitless|turbofan|opt|sparkplug|always[-_](opt|turbofan|sparkplug)|semi[-_]space[-_]growth[-_]factor)(?![\w-])/.test(
    [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '),
  );
if (!ownV8Flags) {
  // [during start-up, after it (V8's default)]
  const flags = [
    ['--semi-space-growth-factor=1', '--semi-space-growth-factor=2'],
    ['--no-opt', '--opt'],
    ['--no-sparkplug', '--sparkplug'],
  ];
  for (const [during] of flags) setFlagsFromString(during);
  globalThis[Symbol.for('portcullis.startupMode')] = flags.map(([, after]) => after);
}

const root = new URL('../', import.meta.url);
const sourceDir = new URL('src/', root);
const stamp = new URL('dist/.build-stamp', root);

/** True when some file under `dir` (tests aside) was modified after `since` (ms). About 1 ms for ~100 files. */
function changedSince(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (changedSince(path, since)) return true;
    } else if (!entry.name.endsWith('.test.ts') && statSync(path).mtimeMs > since) {
      return true;
    }
  }
  return false;
}

function distIsCurrent() {
  if (!existsSync(sourceDir)) return true; // built image: dist/ only
  if (!existsSync(stamp)) return false; // never built, or a build failed half-way
  return !changedSince(sourceDir.pathname.replace(/\/$/, ''), statSync(stamp).mtimeMs);
}

/**
 * True when the bundle may run: it exists, and no package was installed after the build. The bundle carries its
 * own copies of some libraries (zod, yaml, jose, OpenTelemetry), and `npm update` or `npm install <pkg>` do not
 * run `prepare`: dist/cli.js, which imports them from node_modules, then runs until the next build.
 */
function bundleIsCurrent(bundle) {
  if (!existsSync(bundle)) return false;
  const installed = new URL('node_modules/.package-lock.json', root); // npm rewrites it at every install
  return !existsSync(stamp) || !existsSync(installed) || statSync(installed).mtimeMs <= statSync(stamp).mtimeMs;
}

let cli;
if (distIsCurrent()) {
  const bundle = new URL('dist/bundle/cli.js', root);
  cli = await import((bundleIsCurrent(bundle) ? bundle : new URL('dist/cli.js', root)).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('src/cli.ts', root).href);
}
const code = await cli.main(process.argv.slice(2));
process.exitCode = code;
