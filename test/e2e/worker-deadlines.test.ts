// `server.workers` above 1, a worker that never starts or never stops: the primary kills it at its deadline
// (src/worker-deadlines.ts) instead of waiting for it forever. A worker hung in start-up is a failed start (replaced,
// or the primary gives up); one that does not exit on SIGTERM is killed, and the primary exits 1.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { freshGet } from './ratelimit-helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;

const started = (gw: GatewayProcess) => gw.logs.filter((l) => l.msg === 'Gateway Started');
const lines = (gw: GatewayProcess, msg: string) => gw.logs.filter((l) => l.msg === msg);

/** waitFor, failing with what the gateway logged: which of its processes did what, and its stderr. */
async function waitOn(gw: GatewayProcess, what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  try {
    await waitFor(what, probe, timeoutMs);
  } catch (err) {
    const seen = gw.logs.map((l) => `${String(l.msg)} ${l.worker ?? ''} ${l.pid ?? ''} ${l.code ?? ''} ${l.signal ?? ''}`.trim()).join('; ');
    throw new Error(`${(err as Error).message} (logs: ${seen}; stderr: ${gw.stderr().slice(-600)})`);
  }
}

/** Waits for both workers of `gw`, stops the second one (SIGSTOP: it will not exit on its own) and returns both pids. */
async function secondWorkerStopped(gw: GatewayProcess): Promise<[number, number]> {
  await waitOn(gw, 'both workers to start', () => started(gw).length === 2, 15_000);
  const [a, b] = workerPids(gw.child.pid!);
  assert.ok(a !== undefined && b !== undefined);
  process.kill(b, 'SIGSTOP');
  return [a, b];
}

/**
 * A plugin whose import, while the file `<dir>/hang` exists, marks the process (`<dir>/hung-<pid>`) and then blocks
 * its thread for good: Atomics.wait, so no timer of the worker's own (plugin_load_timeout) can fire, and no CPU is
 * burnt meanwhile. A plugin stuck in a synchronous loop, as a stopped process, never reports.
 */
function hangingPlugin(dir: string): string {
  const file = join(dir, 'hang-on-import.mjs');
  writeFileSync(
    file,
    `import { existsSync, writeFileSync } from 'node:fs';
     if (existsSync(${JSON.stringify(join(dir, 'hang'))})) {
       writeFileSync(${JSON.stringify(join(dir, 'hung-'))} + process.pid, '');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
     }
     export default { name: 'hang-on-import', create() { return {}; } };`,
  );
  return file;
}

/** The plugin, with small budgets: a start-up deadline of 1 × (1 s import + 1 s create()) + 1 s close()s + 10 s = 13 s. */
function withHangingPlugin(dir: string): ConfigInput {
  return {
    plugins: [{ name: 'hang', module: hangingPlugin(dir) }],
    middleware: { plugins: ['hang'], plugin_load_timeout: '1s', plugin_timeout: '100ms' },
  };
}

// The five cases run side by side: most of their time is spent waiting for the primary's deadlines (13 s, 10.1 s:
// each bound plus the fixed 10 s margin of src/worker-deadlines.ts), each on a gateway, port and directory of its own.
describe('worker deadlines', { concurrency: true }, () => {
  test('a worker hung in its start-up is killed at its deadline and replaced: the gateway serves with all its workers again', async () => {
    const backend = await startBackend('one');
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-'));
    const gw = await spawnGateway(
      { server: { workers: 2 }, admin: { enabled: false }, load_balancing: { upstreams: upstreams([backend.port]) }, ...withHangingPlugin(dir) },
      { group: true },
    );
    try {
      await waitOn(gw, 'both workers to start', () => started(gw).length === 2, 15_000);
      const [a, b] = workerPids(gw.child.pid!);
      assert.ok(a !== undefined && b !== undefined);
      writeFileSync(join(dir, 'hang'), '');
      process.kill(b, 'SIGKILL');
      let hung: number | undefined;
      await waitOn(gw, 'a replacement hung in its start-up', () => {
        hung = workerPids(gw.child.pid!).find((p) => p !== a && existsSync(join(dir, `hung-${p}`)));
        return hung !== undefined;
      }, 30_000);
      rmSync(join(dir, 'hang')); // the next replacement starts
      const timedOut = () => lines(gw, 'Worker Start Timed Out').find((l) => l.pid === hung);
      await waitOn(gw, 'the primary to kill the hung worker', () => timedOut() !== undefined, 30_000);
      const line = timedOut()!;
      assert.equal(line.level, 50);
      assert.equal(line.deadline_ms, 13_000);
      assert.match(String(line.reason), /^worker \d+ \(pid \d+\) has not started within 13000 ms: killed \(SIGKILL\) as a failed start$/);
      // The exit is logged when node reports it, after the kill the line above announced: waited for, not assumed.
      const exited = () => lines(gw, 'Worker Exited').find((l) => l.worker === line.worker);
      await waitOn(gw, 'the killed worker\'s exit', () => exited() !== undefined, 10_000);
      assert.equal(exited()!.signal, 'SIGKILL');
      await waitOn(gw, 'its replacement to start', () => started(gw).length === 3, 30_000);
      assert.ok(!alive(hung!), 'the hung worker is gone');
      assert.equal(workerPids(gw.child.pid!).length, 2);
      // Fresh connections, handed to the two workers in turn: every one is answered.
      for (let i = 0; i < 4; i++) assert.equal((await freshGet(`${gw.url}/after/${i}`)).status, 200);
    } finally {
      await endGroup(gw);
      await backend.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('workers that all hang at first start: each is killed at its deadline as a failed start, and the primary gives up with exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-'));
    writeFileSync(join(dir, 'hang'), '');
    // Five workers: the five failed starts in a row the primary gives up after come in one round of deadlines.
    const configFile = writeConfig({
      server: { workers: 5 },
      admin: { enabled: false },
      load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 9 }] },
      ...withHangingPlugin(dir),
    });
    const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], {
      cwd: ROOT,
      env: { ...process.env, PORTCULLIS_DATA_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: the finally below ends every process of it
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const began = Date.now();
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      const outcome = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000).unref())]);
      const elapsed = Date.now() - began;
      assert.deepEqual(outcome, { code: 1, signal: null }, `the primary gives up (stderr: ${stderr.slice(-400)})`);
      assert.ok(elapsed >= 13_000, `not before the deadline: ${elapsed} ms`);
      const logs = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const timedOut = logs.filter((l) => l.msg === 'Worker Start Timed Out');
      assert.equal(timedOut.length, 5, 'each of the five was killed at its deadline');
      for (const line of timedOut) assert.equal(line.deadline_ms, 13_000);
      const gaveUp = logs.find((l) => String(l.msg).startsWith('Workers Failing At Start-up'));
      assert.equal(gaveUp?.crashes, 5);
      assert.equal(gaveUp?.signal, 'SIGKILL');
      const hung = readdirSync(dir)
        .filter((f) => f.startsWith('hung-'))
        .map((f) => Number(f.slice('hung-'.length)));
      for (const pid of hung) assert.ok(!alive(pid), `worker ${pid} is gone`);
    } finally {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // nothing left
        }
      }
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(configFile, '..'), { recursive: true, force: true });
    }
  });

  test('SIGTERM with a worker that does not exit (stopped): it is killed at the stop deadline, and the primary exits 1 with no process left', async () => {
    const backend = await startBackend('one');
    // A stop deadline of 100 ms (shutdown_drain) + 10 s (no plugins to close) = 10.1 s.
    const gw = await spawnGateway(
      {
        server: { workers: 2, timeouts: { shutdown_drain: '100ms' } },
        admin: { enabled: false },
        middleware: { plugin_timeout: '100ms' },
        load_balancing: { upstreams: upstreams([backend.port]) },
      },
      { group: true },
    );
    try {
      const [a, b] = await secondWorkerStopped(gw);
      const began = Date.now();
      process.kill(gw.child.pid!, 'SIGTERM'); // the primary alone, as a container runtime signals its first process
      const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 45_000).unref())]);
      const elapsed = Date.now() - began;
      assert.deepEqual(outcome, { code: 1, signal: null }, `the primary exits, not cleanly (stderr: ${gw.stderr().slice(-400)})`);
      assert.ok(elapsed >= 10_000, `the primary waited for the stop deadline: ${elapsed} ms`);
      const killed = lines(gw, 'Workers Killed At Shutdown');
      assert.equal(killed.length, 1);
      assert.equal(killed[0]!.level, 50);
      assert.equal(killed[0]!.deadline_ms, 10_100);
      assert.deepEqual(
        (killed[0]!.workers as Array<{ pid: number }>).map((w) => w.pid),
        [b],
        'the stopped worker, not the one that drained',
      );
      assert.equal(lines(gw, 'Gateway Stopped').length, 1, 'the running worker stopped cleanly');
      assert.ok(!alive(a) && !alive(b), 'no worker is left');
    } finally {
      await endGroup(gw);
      await backend.stop();
    }
  });

  test('a second SIGTERM while a worker does not exit: the primary kills it and exits 1 at once, leaving no process', async () => {
    const backend = await startBackend('one');
    const gw = await spawnGateway(
      { server: { workers: 2 }, admin: { enabled: false }, load_balancing: { upstreams: upstreams([backend.port]) } },
      { group: true },
    );
    try {
      const [, b] = await secondWorkerStopped(gw);
      process.kill(gw.child.pid!, 'SIGTERM');
      await waitOn(gw, 'the running worker to stop', () => lines(gw, 'Gateway Stopped').length === 1, 10_000);
      const began = Date.now();
      process.kill(gw.child.pid!, 'SIGTERM');
      const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8_000).unref())]);
      assert.deepEqual(outcome, { code: 1, signal: null }, `the primary exits 1 (stderr: ${gw.stderr().slice(-400)})`);
      assert.ok(Date.now() - began < 8_000, 'without waiting for the stop deadline (20 s)');
      assert.equal(lines(gw, 'Stop Forced').length, 1);
      await waitOn(gw, 'the stopped worker to be gone', () => !alive(b), 3_000);
    } finally {
      await endGroup(gw);
      await backend.stop();
    }
  });

  test('a worker that cannot open the admin port is a failed start: the primary gives up (exit 1) instead of restarting it forever', async () => {
    const backend = await startBackend('one');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const adminPort = (taken.address() as AddressInfo).port;
    const gw = await spawnGateway(
      {
        server: { workers: 2 },
        admin: { listen_host: '127.0.0.1', listen_port: adminPort },
        load_balancing: { upstreams: upstreams([backend.port]) },
      },
      { group: true },
    ).catch((err: Error) => err);
    try {
      // The other worker starts ("Gateway Started"); the admin one fails each time. With backoff 100 ms doubling, five
      // failed starts take about 3 s.
      assert.ok(!(gw instanceof Error), String(gw));
      const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref())]);
      assert.deepEqual(outcome, { code: 1, signal: null }, `gave up (logs: ${gw.logs.map((l) => l.msg).join(', ')})`);
      assert.equal(lines(gw, "Workers Failing At Start-up: giving up (see the workers' errors above)").length, 1);
      assert.match(gw.stderr(), /EADDRINUSE/);
    } finally {
      if (!(gw instanceof Error)) await endGroup(gw);
      taken.close();
      await backend.stop();
    }
  });
});
