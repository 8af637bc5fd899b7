// Start-up mode (src/startup-mode.ts): bin/portcullis.js turns V8's optimising (TurboFan) and baseline (Sparkplug)
// compilers off while a gateway starts, which keeps an idle gateway small, and the gateway turns them back on once
// it listens. Were they never turned back on, every request would run in the interpreter at a fraction of the
// throughput; were they never turned off, the memory would come back. V8's own traces tell both apart.
//
// V8 writes its traces with C's stdio, the logger with its own writes: on one pipe the two cut into each other's
// lines. --redirect-code-traces sends the traces to a file per process instead (code-<pid>-<isolate>.asm in the
// working directory), which also tells a cluster's workers apart.
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHealthMany, startProcess, writeConfig } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** The node flags that make V8 write what it compiles to a file per process. */
const TRACES = ['--trace-opt', '--trace-baseline-batch-compilation', '--redirect-code-traces'];
/** What --trace-opt writes when a function has been compiled by TurboFan. */
const OPTIMIZED = /completed (compiling|optimizing) .*TURBOFAN/;
/** What --trace-baseline-batch-compilation writes for each batch Sparkplug compiles. */
const BASELINE_BATCH = /\[Baseline batch compilation\] Compiling current batch/g;

interface TracedGateway {
  /** V8's traces so far, by process id: the primary's and, in a cluster, each worker's. */
  readonly traces: () => Map<number, string>;
  /** The process id of the process started (a cluster's primary). */
  readonly pid: number;
  readonly base: string;
  stop(): Promise<void>;
}

/**
 * Runs `node <nodeFlags> bin/portcullis.js start` with a minimal config (and `workers` processes) in a directory of
 * its own and waits until every process listens, then half a second more with no traffic.
 */
async function startTraced(nodeFlags: readonly string[], workers = 1): Promise<TracedGateway> {
  const config = writeConfig({
    server: { listen_host: '127.0.0.1', listen_port: await freePort(), workers },
    admin: { enabled: false },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
  });
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-traces-'));
  let gateway;
  try {
    gateway = await startProcess(process.execPath, [...nodeFlags, join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], config, {
      cwd,
    });
  } catch (err) {
    rmSync(cwd, { recursive: true, force: true });
    throw err;
  }
  // SIGTERM first: a cluster primary stops its workers on it (cleanup() then kills whatever is left).
  const stop = async (): Promise<void> => {
    gateway.signal('SIGTERM');
    await Promise.race([gateway.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    await gateway.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  };
  const started = gateway;
  try {
    await waitFor(() => started.logs.filter((line) => line.msg === 'Gateway Started').length === workers, 'workers to start', 20_000, 20);
  } catch {
    await stop();
    throw new Error(`workers did not start: ${gateway.stderr().slice(-500)}`);
  }
  await sleep(500);
  const traces = (): Map<number, string> => {
    const byPid = new Map<number, string>();
    for (const name of readdirSync(cwd)) {
      const pid = /^code-(\d+)-\d+\.asm$/.exec(name)?.[1];
      if (pid !== undefined) byPid.set(Number(pid), (byPid.get(Number(pid)) ?? '') + readFileSync(join(cwd, name), 'latin1'));
    }
    return byPid;
  };
  return { traces, pid: gateway.child.pid!, base: gateway.url, stop };
}

/** Enough requests to make the request path hot: the first test's gateway is optimised within its first 250. */
const DRIVE_REQUESTS = 4000;

/**
 * Traffic in rounds of 250 requests until `done` holds for the traces, DRIVE_REQUESTS at most (then up to `ms` more
 * for the traces to show it): a path that tiers up after the first rounds is not driven the whole way for nothing.
 */
async function driveUntil(gateway: TracedGateway, ms: number, done: (traces: Map<number, string>) => boolean): Promise<boolean> {
  for (let sent = 0; sent < DRIVE_REQUESTS; sent += 250) {
    await getHealthMany(gateway.base, 250);
    if (done(gateway.traces())) return true;
  }
  return within(gateway, ms, done);
}

/** Everything V8 traced so far, in all processes. */
function allTraces(gateway: TracedGateway): string {
  return [...gateway.traces().values()].join('');
}

/** How many batches Sparkplug has compiled so far. */
function baselineBatches(gateway: TracedGateway): number {
  return (allTraces(gateway).match(BASELINE_BATCH) ?? []).length;
}

/** Waits up to `ms` until `done` holds for the traces. */
async function within(gateway: TracedGateway, ms: number, done: (traces: Map<number, string>) => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (done(gateway.traces())) return true;
    await sleep(50);
  }
  return done(gateway.traces());
}

/**
 * TurboFan lines for work start-up mode governs. A cluster worker can mark and compile Node's own `wrappedFn` (the
 * validators' hideStackFrames wrapper) while Node loads bin/portcullis.js's first imports: that is before bin enters
 * the mode, by design (Node's code cache needs V8's flags unchanged until its modules are loaded, see bin), and
 * Sparkplug's batches around those lines show the mode was not on yet. Seen on every cluster run of 2026-12-03 evening,
 * on the commit that had passed CI the day before; nothing of the gateway's own was optimised.
 */
function turbofanLines(trace: string): string[] {
  return trace.split('\n').filter((line) => line.includes('TURBOFAN') && !line.includes('<JSFunction wrappedFn '));
}

/** Whether any process has optimised a function. */
const anyOptimized = (traces: Map<number, string>): boolean => [...traces.values()].some((trace) => OPTIMIZED.test(trace));

test('a gateway optimises no code while it starts, and compiles the request path once it listens', async () => {
  const gateway = await startTraced(TRACES);
  try {
    assert.doesNotMatch(allTraces(gateway), /TURBOFAN/, 'nothing is optimised while the gateway starts and idles');
    const batchesAtIdle = baselineBatches(gateway);
    assert.ok(await driveUntil(gateway, 5000, anyOptimized), 'traffic gets the request path optimised (TurboFan is back on)');
    assert.ok(baselineBatches(gateway) > batchesAtIdle, 'traffic gets baseline code compiled (Sparkplug is back on)');
  } finally {
    await gateway.stop();
  }
});

test('cluster workers end start-up mode too: their request path is optimised once they listen', async () => {
  const gateway = await startTraced(TRACES, 2);
  try {
    assert.deepEqual(turbofanLines(allTraces(gateway)), [], 'nothing is optimised while the workers start and idle');
    const workersOptimized = (traces: Map<number, string>): number =>
      [...traces].filter(([pid, trace]) => pid !== gateway.pid && OPTIMIZED.test(trace)).length;
    assert.ok(await driveUntil(gateway, 5000, (traces) => workersOptimized(traces) === 2), "traffic gets each worker's request path optimised");
  } finally {
    await gateway.stop();
  }
});

test("a gateway started with node's own --no-opt keeps it: start-up mode does not turn the compiler on", async () => {
  const gateway = await startTraced([...TRACES, '--no-opt']);
  try {
    // Half of DRIVE_REQUESTS: still eight times what gets the request path optimised without --no-opt.
    await getHealthMany(gateway.base, DRIVE_REQUESTS / 2);
    assert.equal(await within(gateway, 1000, anyOptimized), false, 'nothing is optimised under --no-opt');
    assert.ok(baselineBatches(gateway) > 0, "V8's traces reached the file (Sparkplug, which --no-opt leaves on, was traced)");
  } finally {
    await gateway.stop();
  }
});

/**
 * A gateway started with --trace-gc, and the compactions V8 has traced in it so far. `whileStarting` runs from the
 * spawn on, with the port the gateway will listen on (a load that must not wait for the Gateway Started line).
 */
async function startGcTraced(
  whileStarting?: (port: number) => Promise<void>,
): Promise<{ gateway: Awaited<ReturnType<typeof startProcess>>; compactions: () => number; during: Promise<void> }> {
  const port = await freePort();
  const config = writeConfig({
    server: { listen_host: '127.0.0.1', listen_port: port },
    admin: { enabled: false },
    // No access log: after Gateway Started, stdout carries only V8's --trace-gc lines.
    logging: { access_log: false },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
  });
  const starting = startProcess(process.execPath, ['--trace-gc', join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], config);
  const during = whileStarting?.(port) ?? Promise.resolve();
  during.catch(() => undefined); // awaited by the test; handled here so a failure while starting is not unhandled
  const gateway = await starting;
  let traced = '';
  gateway.child.stdout!.on('data', (chunk: Buffer) => (traced += chunk.toString('latin1')));
  // gc() from --expose-gc is V8's "testing" collection; the gateway takes it for this one compaction only.
  return { gateway, during, compactions: () => (traced.match(/Mark-Compact[^\n]*testing/g) ?? []).length };
}

/** Resolves once `port` accepts a connection (tried every 5 ms, for at most 20 s). */
async function listening(port: number): Promise<void> {
  for (const deadline = Date.now() + 20_000; ; ) {
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    const socket = connect(port, '127.0.0.1');
    // events.once rejects on 'error': a refused connection.
    const accepted = await once(socket, 'connect').then(
      () => true,
      () => false,
    );
    socket.destroy();
    if (accepted) return;
    await sleep(5);
  }
}

/**
 * Keeps the gateway busy for `ms`: four keep-alive connections, each sending batches of 50 pipelined GET /health and
 * reading their answers before the next batch. Cheaper for this process than a client library per request, so the
 * gateway, not the client, is what the load keeps busy.
 */
async function pipelinedLoad(port: number, ms: number): Promise<void> {
  const batch = 'GET /health HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(50);
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      try {
        while (Date.now() < until) {
          socket.write(batch);
          let answers = 0;
          let tail = '';
          while (answers < 50) {
            const [chunk] = (await once(socket, 'data')) as [Buffer];
            const text = tail + chunk.toString('latin1');
            answers += text.split('HTTP/1.1 200').length - 1;
            tail = text.slice(-11); // shorter than the marker: never counted twice
          }
        }
      } finally {
        socket.destroy();
      }
    }),
  );
}

test('once it listens and is idle, a gateway compacts its heap once: the full collection V8 reports as "testing"', async () => {
  const { gateway, compactions } = await startGcTraced();
  try {
    await getHealthMany(gateway.url, 1);
    await sleep(1500);
    assert.equal(compactions(), 1, 'one compaction after start-up');
  } finally {
    await gateway.cleanup();
  }
});

test('a gateway busy from its first second does not pause its requests to compact; it compacts once traffic stops', async () => {
  // The load starts as soon as the port listens, before the Gateway Started line reaches this process.
  const { gateway, compactions, during } = await startGcTraced(async (port) => {
    await listening(port);
    await pipelinedLoad(port, 1500);
  });
  try {
    await during;
    assert.equal(compactions(), 0, 'no compaction while requests keep coming');
    await sleep(1500);
    assert.equal(compactions(), 1, 'one compaction once the gateway is idle');
  } finally {
    await gateway.cleanup();
  }
});
