// What was wrong: a gateway opens its proxy port before start-up is over (the admin listener, which loads its modules
// first, opens after it), but listened for SIGTERM and SIGINT only once start-up was over. A stop signal in between
// found no listener: Node's default action ended the process, and the requests it was already serving were cut, with
// no drain and no exit code. Seen in full runs of the suite: a gateway whose /health answered and whose request was
// at the backend died of SIGTERM with nothing on stderr.
// What is right now: listened for from the start (src/stop-signal.ts). Once the proxy port is open, a stop is kept and
// the gateway drains as soon as start-up is over; before anything listens, the process still ends at once by the
// signal. The window is held open by holding one listen (test/helpers/hold-listen-import.mjs).
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { childExit } from '../helpers/child-exit.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { sleep, waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;
const HOLD = new URL('../helpers/hold-listen-import.mjs', import.meta.url).pathname;

const client = createClient();
after(() => client.close());

interface HeldGateway {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The messages of its JSON log lines so far. */
  readonly messages: () => string[];
  readonly stderr: () => string;
  /** Lets the held listen go on. */
  go(): void;
}

/**
 * Starts `portcullis start` in front of a backend of its own, its listen on `holdPort` waiting (until go()); resolves
 * once that listen is reached. Everything is stopped and removed after the test `t`.
 */
async function startHeldAt(t: TestContext, hold: 'proxy' | 'admin', workers = 1): Promise<HeldGateway & { backend: TestBackend; proxyPort: number }> {
  const backend = await startBackend('api');
  t.after(() => backend.stop());
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const holdPort = hold === 'proxy' ? proxyPort : adminPort;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-held-'));
  const dataDir = tempDataDir();
  const config = writeConfig({
    server: { listen_port: proxyPort, workers },
    admin: { listen_port: adminPort },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  const child = spawn(process.execPath, ['--import', HOLD, BIN, 'start', '--config', config], {
    env: {
      ...process.env,
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_TEST_HOLD_DIR: dir,
      PORTCULLIS_TEST_HOLD_LISTEN_PORT: String(holdPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = childExit(child);
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    for (const path of [dir, dataDir, join(config, '..')]) rmSync(path, { recursive: true, force: true });
  };
  t.after(cleanup);
  await waitFor(() => existsSync(join(dir, 'held')) || child.exitCode !== null, `the listen on port ${holdPort} held`, 20_000);
  assert.equal(child.exitCode, null, `exited before its listen was held: ${stderr}`);
  return {
    backend,
    proxyPort,
    child,
    exited,
    messages: () => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => String((JSON.parse(l) as { msg: unknown }).msg)),
    stderr: () => stderr,
    go: () => writeFileSync(join(dir, 'go'), ''),
  };
}

/** Resolves with how the child ended, or 'still running' after `ms`. */
async function endWithin(gw: HeldGateway, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  const end = await Promise.race([gw.exited, bound]);
  clearTimeout(timer);
  return end;
}

describe('a stop signal while the gateway starts', { concurrency: true }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} with the proxy port open and the admin listener not yet: the request in flight is answered, then exit 0`, async (t) => {
      const gw = await startHeldAt(t, 'admin');
      const { backend, proxyPort } = gw;
      // Served while start-up waits: the proxy port is open, and this request is at the backend when the signal comes.
      const held = client.request(`http://127.0.0.1:${proxyPort}/slow?ms=1500`, { timeoutMs: 30_000 });
      held.catch(() => undefined); // awaited below
      await waitFor(() => backend.active > 0, 'the request at the backend', 15_000);
      gw.child.kill(signal);
      await sleep(300); // delivered while the admin listen is held
      assert.equal(gw.child.exitCode, null, `ended by the signal during start-up: ${gw.stderr()}`);
      gw.go();
      assert.equal((await held).status, 200);
      const end = await endWithin(gw, 15_000);
      assert.deepEqual(end, { code: 0, signal: null }, gw.stderr());
      const messages = gw.messages();
      assert.ok(messages.indexOf('Gateway Started') < messages.indexOf('Gateway Stopped'), messages.join(', '));
      assert.ok(messages.indexOf('Gateway Started') >= 0, messages.join(', '));
    });
  }

  test('two SIGTERMs while it starts: once started, the second forces the stop (Stop Forced, exit 1)', async (t) => {
    const gw = await startHeldAt(t, 'admin');
    const { backend, proxyPort } = gw;
    const held = client.request(`http://127.0.0.1:${proxyPort}/slow?ms=20000`, { timeoutMs: 30_000 }).catch(() => undefined);
    await waitFor(() => backend.active > 0, 'the request at the backend', 15_000);
    gw.child.kill('SIGTERM');
    await sleep(200);
    gw.child.kill('SIGTERM');
    await sleep(300);
    assert.equal(gw.child.exitCode, null, `ended by a signal during start-up: ${gw.stderr()}`);
    gw.go();
    // Not after the 20 s request: the second signal is a forced stop, as it would be after start-up.
    const end = await endWithin(gw, 10_000);
    assert.deepEqual(end, { code: 1, signal: null }, gw.stderr());
    assert.ok(gw.messages().includes('Stop Forced'), gw.messages().join(', '));
    await held;
  });

  test('a multi-worker gateway stopped while a worker starts (its admin listener held): that worker drains too', async (t) => {
    // --import is in the primary's execArgv, which node:cluster gives its workers: the admin worker is the one held.
    const gw = await startHeldAt(t, 'admin', 2);
    const { backend, proxyPort } = gw;
    // Each on a connection of its own: the primary hands them out in turn to the workers that listen on the proxy
    // port, the held one among them, so some of them are that worker's.
    const requests = Array.from({ length: 4 }, () => client.request(`http://127.0.0.1:${proxyPort}/slow?ms=1500`, { timeoutMs: 30_000 }));
    for (const request of requests) request.catch(() => undefined); // awaited below
    await waitFor(() => backend.active === 4, 'the four requests at the backend', 15_000);
    gw.child.kill('SIGTERM'); // the primary, which sends every worker SIGTERM
    await sleep(300);
    gw.go();
    assert.deepEqual((await Promise.all(requests)).map((r) => r.status), [200, 200, 200, 200]);
    const end = await endWithin(gw, 20_000);
    assert.deepEqual(end, { code: 0, signal: null }, gw.stderr());
  });

  test('SIGTERM before anything listens (the proxy listen held): the process ends at once, by the signal', async (t) => {
    const gw = await startHeldAt(t, 'proxy');
    gw.child.kill('SIGTERM');
    // No go(): a start-up that has nothing to drain is not waited for.
    const end = await endWithin(gw, 10_000);
    assert.deepEqual(end, { code: null, signal: 'SIGTERM' }, gw.stderr());
    assert.ok(!gw.messages().includes('Gateway Started'), gw.messages().join(', '));
  });
});
