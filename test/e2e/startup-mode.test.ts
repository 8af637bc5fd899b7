// Start-up mode (src/startup-mode.ts): bin/portcullis.js turns V8's optimising (TurboFan) and baseline (Sparkplug)
// compilers off while a gateway starts, which keeps an idle gateway small, and the gateway turns them back on once
// it listens. Were they never turned back on, every request would run in the interpreter at a fraction of the
// throughput; were they never turned off, the memory would come back. V8's own traces tell both apart. They are
// read by count, not by their place relative to the log lines: the logger buffers its lines, V8 does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startProcess, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** The node flags that make V8 print what it compiles. */
const TRACES = ['--trace-opt', '--trace-baseline-batch-compilation'];
/** What --trace-opt prints when a function has been compiled by TurboFan. */
const OPTIMIZED = /completed (compiling|optimizing) .*TURBOFAN/;
/** What --trace-baseline-batch-compilation prints for each batch Sparkplug compiles. */
const BASELINE_BATCH = /\[Baseline batch compilation\] Compiling current batch/g;

interface TracedGateway {
  /** Everything the process (and its workers) wrote to stdout so far: JSON log lines and V8's traces. */
  readonly output: () => string;
  readonly base: string;
  stop(): Promise<void>;
}

/**
 * Runs `node <nodeFlags> bin/portcullis.js start` with a minimal config (and `workers` processes) and waits until
 * every process listens, then half a second more with no traffic.
 */
async function startTraced(nodeFlags: readonly string[], workers = 1): Promise<TracedGateway> {
  const config = writeConfig({
    server: { listen_host: '127.0.0.1', listen_port: await freePort(), workers },
    admin: { enabled: false },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
  });
  const gateway = await startProcess(process.execPath, [...nodeFlags, join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], config);
  // SIGTERM first: a cluster primary stops its workers on it (cleanup() then kills whatever is left).
  const stop = async (): Promise<void> => {
    gateway.signal('SIGTERM');
    await Promise.race([gateway.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    await gateway.cleanup();
  };
  const deadline = Date.now() + 20_000;
  while ((gateway.stdout().match(/"Gateway Started"/g) ?? []).length < workers) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`workers did not start: ${gateway.stderr().slice(-500)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { output: gateway.stdout, base: gateway.url, stop };
}

/** Enough requests, 50 at a time, to make the request path hot. */
async function drive(base: string, requests = 4000): Promise<void> {
  for (let sent = 0; sent < requests; sent += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const res = await fetch(`${base}/health`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }),
    );
  }
}

/** How many batches Sparkplug has compiled so far. */
function baselineBatches(gateway: TracedGateway): number {
  return (gateway.output().match(BASELINE_BATCH) ?? []).length;
}

/** Waits up to `ms` for `pattern` in the gateway's output. */
async function sawWithin(gateway: TracedGateway, pattern: RegExp, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pattern.test(gateway.output())) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pattern.test(gateway.output());
}

test('a gateway optimises no code while it starts, and compiles the request path once it listens', async () => {
  const gateway = await startTraced(TRACES);
  try {
    assert.doesNotMatch(gateway.output(), /TURBOFAN/, 'nothing is optimised while the gateway starts and idles');
    const batchesAtIdle = baselineBatches(gateway);
    await drive(gateway.base);
    assert.ok(await sawWithin(gateway, OPTIMIZED, 5000), 'traffic gets the request path optimised (TurboFan is back on)');
    assert.ok(baselineBatches(gateway) > batchesAtIdle, 'traffic gets baseline code compiled (Sparkplug is back on)');
  } finally {
    await gateway.stop();
  }
});

test('cluster workers end start-up mode too: their request path is optimised once they listen', async () => {
  const gateway = await startTraced(TRACES, 2);
  try {
    assert.doesNotMatch(gateway.output(), /TURBOFAN/, 'nothing is optimised while the workers start and idle');
    await drive(gateway.base);
    assert.ok(await sawWithin(gateway, OPTIMIZED, 5000), "traffic gets the workers' request path optimised");
  } finally {
    await gateway.stop();
  }
});

test("a gateway started with node's own --no-opt keeps it: start-up mode does not turn the compiler on", async () => {
  const gateway = await startTraced(['--trace-opt', '--no-opt']);
  try {
    await drive(gateway.base);
    assert.equal(await sawWithin(gateway, OPTIMIZED, 1000), false, 'nothing is optimised under --no-opt');
  } finally {
    await gateway.stop();
  }
});
