// What was wrong: a gateway opens its proxy port before start-up is over (the redirect and admin listeners open after
// it, the admin one after loading its modules), but listened for SIGTERM and SIGINT only once start-up was over. A
// stop signal in between found no listener: Node's default action ended the process, and the requests it was already
// serving were cut, with no drain and no exit code. Seen in full runs of the suite: a gateway whose /health answered
// and whose request was at the backend died of SIGTERM with nothing on stderr.
// What is right now: listened for from the start (src/stop-signal.ts). Once the proxy port is open, a stop is kept and
// the gateway drains as soon as start-up is over; before anything listens, or once start-up has failed, the process
// still ends at once by the signal. The window is held open by holding one listen (test/helpers/hold-listen-import.mjs).
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { tempDataDir, upstreams, writeConfig, type ConfigInput } from '../helpers/gateway.js';
import { childExit } from '../helpers/child-exit.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { createTestCa } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;
const HOLD = new URL('../helpers/hold-listen-import.mjs', import.meta.url).pathname;

const client = createClient();
after(() => client.close());

type Exit = { code: number | null; signal: NodeJS.Signals | null };

interface HeldGateway {
  readonly backend: TestBackend;
  readonly proxyPort: number;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  /** The messages of its JSON log lines so far. */
  readonly messages: () => string[];
  readonly stderr: () => string;
  /** Sends `signal` to the gateway, or with `group` to its whole process group (its workers too). */
  signal(signal: NodeJS.Signals): void;
  /** Lets the held listen go on. */
  go(): void;
}

interface HeldOptions {
  /** Whose listen waits for go(). */
  readonly hold: 'proxy' | 'admin' | 'redirect';
  /** Merged into the config's top level; `server` into its server section. */
  readonly config?: ConfigInput & { server?: ConfigInput };
  /** Run in a process group of its own, which signal() addresses. */
  readonly group?: boolean;
  /** The admin port (default: a free one). */
  readonly adminPort?: number;
}

/**
 * Starts `portcullis start` in front of a backend of its own, one of its listens waiting (until go()); resolves once
 * that listen is reached. Everything is stopped and removed after the test `t`.
 */
async function startHeld(t: TestContext, options: HeldOptions): Promise<HeldGateway> {
  const backend = await startBackend('api');
  t.after(() => backend.stop());
  const proxyPort = await freePort();
  const adminPort = options.adminPort ?? (await freePort());
  const redirectPort = await freePort();
  const holdPort = { proxy: proxyPort, admin: adminPort, redirect: redirectPort }[options.hold];
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-held-'));
  const dataDir = tempDataDir();
  const { server = {}, ...rest } = options.config ?? {};
  const config = writeConfig({
    ...rest,
    server: { listen_port: proxyPort, ...(options.hold === 'redirect' ? { http_redirect: { listen_port: redirectPort } } : {}), ...server },
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
    detached: options.group ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = childExit(child);
  const signal = (name: NodeJS.Signals): void => {
    try {
      if (options.group) process.kill(-child.pid!, name);
      else child.kill(name);
    } catch {
      // the group is gone
    }
  };
  t.after(async () => {
    // The whole group: a primary killed alone leaves its workers to notice the lost channel.
    signal('SIGKILL');
    await exited;
    for (const path of [dir, dataDir, join(config, '..')]) rmSync(path, { recursive: true, force: true });
  });
  await waitFor(() => existsSync(join(dir, 'held')) || child.exitCode !== null, `the listen on port ${holdPort} held`, 20_000);
  assert.equal(child.exitCode, null, `exited before its listen was held: ${stderr}`);
  return {
    backend,
    proxyPort,
    child,
    exited,
    messages: () => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => String((JSON.parse(l) as { msg: unknown }).msg)),
    stderr: () => stderr,
    signal,
    go: () => writeFileSync(join(dir, 'go'), ''),
  };
}

/** Resolves with how the child ended, or 'still running' after `ms`. */
async function endWithin(gw: HeldGateway, ms: number): Promise<Exit | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  const end = await Promise.race([gw.exited, bound]);
  clearTimeout(timer);
  return end;
}

/** Asserts the gateway logged Gateway Started, then Gateway Stopped. */
function assertStartedThenStopped(gw: HeldGateway): void {
  const messages = gw.messages();
  const started = messages.indexOf('Gateway Started');
  assert.ok(started >= 0 && started < messages.indexOf('Gateway Stopped'), messages.join(', '));
}

/**
 * A plugin module that does nothing; with `closes: false` its instances' close() never settles, so a failed
 * start-up's clean-up waits out its budget.
 */
function pluginModule(t: TestContext, closes: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'plugin.mjs');
  const close = closes ? 'undefined' : 'new Promise(() => {})';
  writeFileSync(file, `export default { name: 'does-nothing', create() { return { close: () => ${close} }; } };\n`);
  return file;
}

describe('a stop signal while the gateway starts', { concurrency: true }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} with the proxy port open and the admin listener not yet: the request in flight is answered, then exit 0`, async (t) => {
      const gw = await startHeld(t, { hold: 'admin' });
      // Served while start-up waits: the proxy port is open, and this request is at the backend when the signal comes.
      const held = client.request(`http://127.0.0.1:${gw.proxyPort}/slow?ms=1500`, { timeoutMs: 30_000 });
      held.catch(() => undefined); // awaited below
      await waitFor(() => gw.backend.active > 0, 'the request at the backend', 15_000);
      gw.signal(signal);
      await sleep(300); // delivered while the admin listen is held
      assert.equal(gw.child.exitCode, null, `ended by the signal during start-up: ${gw.stderr()}`);
      gw.go();
      assert.equal((await held).status, 200);
      assert.deepEqual(await endWithin(gw, 15_000), { code: 0, signal: null }, gw.stderr());
      assertStartedThenStopped(gw);
    });
  }

  test('SIGTERM with the proxy port open and the redirect listener not yet: the request in flight is answered', async (t) => {
    const ca = createTestCa('Stop During Start CA');
    t.after(() => rmSync(ca.dir, { recursive: true, force: true }));
    const { certFile, keyFile } = ca.issue('a.test');
    const gw = await startHeld(t, { hold: 'redirect', config: { server: { tls: { cert_file: certFile, key_file: keyFile } } } });
    const agent = new Agent({ connect: { ca: ca.ca, servername: 'a.test' } });
    t.after(() => agent.close());
    const held = request(`https://127.0.0.1:${gw.proxyPort}/slow?ms=1500`, { dispatcher: agent, headersTimeout: 30_000 }).then(async (res) => {
      await res.body.text();
      return res.statusCode;
    });
    held.catch(() => undefined); // awaited below
    await waitFor(() => gw.backend.active > 0, 'the request at the backend', 15_000);
    gw.signal('SIGTERM');
    await sleep(300);
    assert.equal(gw.child.exitCode, null, `ended by the signal during start-up: ${gw.stderr()}`);
    gw.go();
    assert.equal(await held, 200);
    assert.deepEqual(await endWithin(gw, 15_000), { code: 0, signal: null }, gw.stderr());
    assertStartedThenStopped(gw);
  });

  test('two SIGTERMs while it starts: once started, the second forces the stop (Stop Forced, exit 1)', async (t) => {
    const gw = await startHeld(t, { hold: 'admin' });
    const held = client.request(`http://127.0.0.1:${gw.proxyPort}/slow?ms=20000`, { timeoutMs: 30_000 }).catch(() => undefined);
    await waitFor(() => gw.backend.active > 0, 'the request at the backend', 15_000);
    gw.signal('SIGTERM');
    await sleep(200);
    gw.signal('SIGTERM');
    await sleep(300);
    assert.equal(gw.child.exitCode, null, `ended by a signal during start-up: ${gw.stderr()}`);
    gw.go();
    // Not after the 20 s request: the second signal is a forced stop, as it would be after start-up.
    assert.deepEqual(await endWithin(gw, 10_000), { code: 1, signal: null }, gw.stderr());
    assert.ok(gw.messages().includes('Stop Forced'), gw.messages().join(', '));
    await held;
  });

  test('a multi-worker gateway signalled as a process group while a worker starts: every worker drains, exit 0', async (t) => {
    // --import is in the primary's execArgv, which node:cluster gives its workers: the admin worker is the one held.
    // The plugin lengthens the primary's start deadline for a worker ((2 × 1 + 1) × plugin_load_timeout + 10 s), so
    // a loaded machine's slow start-up plus the hold never gets the held worker killed as a failed start.
    const gw = await startHeld(t, {
      hold: 'admin',
      group: true,
      config: {
        server: { workers: 2 },
        plugins: [{ name: 'lengthens-deadline', module: pluginModule(t, true) }],
        middleware: { plugins: ['lengthens-deadline'], plugin_load_timeout: '30s' },
      },
    });
    // Each on a connection of its own: the primary hands them out in turn to the workers that listen on the proxy
    // port, the held one among them, so some of them are that worker's.
    const requests = Array.from({ length: 4 }, () => client.request(`http://127.0.0.1:${gw.proxyPort}/slow?ms=1500`, { timeoutMs: 30_000 }));
    for (const pending of requests) pending.catch(() => undefined); // awaited below
    await waitFor(() => gw.backend.active === 4, 'the four requests at the backend', 15_000);
    // To the whole group, as systemd and Ctrl-C send it: each worker gets it twice, from here and from its primary,
    // and the second must not force the stop of the one still starting.
    gw.signal('SIGTERM');
    await sleep(300);
    gw.go();
    assert.deepEqual((await Promise.all(requests)).map((r) => r.status), [200, 200, 200, 200]);
    assert.deepEqual(await endWithin(gw, 20_000), { code: 0, signal: null }, gw.stderr());
    assert.ok(!gw.messages().includes('Worker Start Timed Out'), gw.messages().join(', '));
  });

  test('SIGTERM before anything listens (the proxy listen held): the process ends at once, by the signal', async (t) => {
    const gw = await startHeld(t, { hold: 'proxy' });
    gw.signal('SIGTERM');
    // No go(): a start-up that has nothing to drain is not waited for.
    assert.deepEqual(await endWithin(gw, 10_000), { code: null, signal: 'SIGTERM' }, gw.stderr());
    assert.ok(!gw.messages().includes('Gateway Started'), gw.messages().join(', '));
  });

  test('a WebSocket tunnel opened while it starts, then start-up fails (admin port taken): the process still exits 1', async (t) => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const gw = await startHeld(t, { hold: 'admin', adminPort: (taken.address() as { port: number }).port });
    // Relayed while start-up waits: an upgraded connection, which the listener's closeAll() does not reach.
    const tunnel = netConnect(gw.proxyPort, '127.0.0.1');
    t.after(() => tunnel.destroy());
    tunnel.on('error', () => undefined);
    tunnel.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    let head = '';
    tunnel.on('data', (d: Buffer) => (head += d.toString('latin1')));
    await waitFor(() => head.includes('101 Switching Protocols'), 'the tunnel open', 15_000);
    gw.go();
    // Before, the failed start-up waited for the tunnel to close, and never printed its error nor exited.
    assert.deepEqual(await endWithin(gw, 10_000), { code: 1, signal: null }, gw.stderr());
    assert.match(gw.stderr(), /admin/);
  });

  test('SIGTERM kept while starting, then start-up fails (admin port taken): the failure is printed, and the process ends by the signal at once', async (t) => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const adminPort = (taken.address() as { port: number }).port;
    // Its clean-up would wait 20 s for the plugin's close(); a stop that came meanwhile has nothing to wait for.
    const gw = await startHeld(t, {
      hold: 'admin',
      adminPort,
      config: {
        plugins: [{ name: 'never-closes', module: pluginModule(t, false) }],
        middleware: { plugins: ['never-closes'], plugin_load_timeout: '20s' },
      },
    });
    gw.signal('SIGTERM');
    await sleep(300);
    assert.equal(gw.child.exitCode, null, `ended by the signal while the proxy port was open: ${gw.stderr()}`);
    gw.go();
    assert.deepEqual(await endWithin(gw, 10_000), { code: null, signal: 'SIGTERM' }, gw.stderr());
    // The line the command prints when start-up fails without a stop (cli.ts): the operator learns why it failed.
    assert.match(gw.stderr(), new RegExp(`^portcullis: .*admin\\.listen_port.*${adminPort}`, 'm'));
    assert.equal(gw.stderr().match(/^portcullis: /gm)?.length, 1, gw.stderr());
  });
});
