#!/usr/bin/env node
// Entry point of the `portcullis` command. Runs the compiled dist/ when it is up to date with src/, otherwise the
// TypeScript sources through tsx (build-status.js decides). tsx costs about a second of start-up and 40 MB, dist/
// neither.
// Of dist/, the bundle (dist/bundle/, scripts/bundle.mjs) starts about 100 ms sooner than the ~430 files dist/cli.js loads.
import { setFlagsFromString } from 'node:v8';
import { buildToRun, entryPoint } from './build-status.js';
// Node's own modules a gateway loads, imported before start-up mode sets V8 flags (below). Node compiles its modules
// from a code cache built into the binary, and V8 accepts that cache only under the flags it was made with: each of
// these loaded after setFlagsFromString() would be compiled from source instead. The order follows Node's. Not
// node:cluster, which reads NODE_CLUSTER_SCHED_POLICY when it loads: cli.ts may read that from .env first. Not
// node:tls, node:https or node:http2 either: about 0.7 MB that only a TLS listener or an upstream speaking TLS or
// HTTP/2 needs (src/node-builtins.ts); such a gateway compiles them from source, a few milliseconds more.
import 'node:net';
import 'node:crypto';
import 'node:os';
import 'node:dgram';
import 'node:child_process';
import 'node:tty';
import 'node:http';
import 'node:assert';
import 'node:perf_hooks';
import 'node:worker_threads';
import 'node:dns';
import 'node:fs/promises';
import 'node:stream/promises';
import 'node:diagnostics_channel';
import 'node:module';
import 'node:process';
import 'node:util';

// SIGHUP and SIGUSR1 from here on (src/early-signals.ts): with no listener, SIGHUP would end the process and SIGUSR1
// open Node's inspector while the command line loads. The gateway takes over those that came; other commands let go.
const earlySignals = new Set();
const noteSignal = (signal) => earlySignals.add(signal);
process.on('SIGHUP', noteSignal);
process.on('SIGUSR1', noteSignal);
globalThis[Symbol.for('portcullis.earlySignals')] = {
  seen: earlySignals,
  release() {
    process.off('SIGHUP', noteSignal);
    process.off('SIGUSR1', noteSignal);
  },
};

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
const build = buildToRun(root);
if (build === 'source') {
  const { register } = await import('tsx/esm/api');
  register();
}
const cli = await import(entryPoint(root, build).href);
const code = await cli.main(process.argv.slice(2));
process.exitCode = code;
