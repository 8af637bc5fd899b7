// The gateway as a process: connection limit, graceful drain on SIGTERM, SIGINT, config errors and the CLI surface.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, spawnGateway, startProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { openSocket, rawRequest } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let backend: TestBackend;
const client = createClient();
const running: GatewayProcess[] = [];

before(async () => {
  backend = await startBackend('life');
});
after(async () => {
  await Promise.all(running.map((p) => p.cleanup()));
  await client.close();
  await backend?.stop();
});

async function spawn(extra: Record<string, unknown> = {}): Promise<GatewayProcess> {
  const gw = await spawnGateway({ ...extra, load_balancing: { upstreams: upstreams([backend.port]) } });
  running.push(gw);
  return gw;
}

/** A config with one mistake, written as is (no test defaults), for the CLI error tests. */
function badConfig(mistake: 'strategy' | 'typo'): string {
  const lb = { upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] };
  return writeConfig(
    mistake === 'strategy'
      ? { load_balancing: { ...lb, strategy: 'fastest' } }
      : { server: { listen_prot: 8080 }, load_balancing: lb },
    true,
  );
}

function assertOneLineConfigError(result: { code: number | null; stderr: string }, keyPath: string): void {
  assert.equal(result.code, 1);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.ok(lines[0]!.includes(keyPath), `names ${keyPath}: ${lines[0]}`);
  assert.ok(!result.stderr.includes('    at '), 'no stack trace');
}

describe('connection limit', () => {
  test('server.max_connections: 2 — a third concurrent connection is closed while two are served', async () => {
    const gw = await spawn({ server: { max_connections: 2 } });
    const request = 'GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const first = rawRequest(gw.port, request);
    const second = rawRequest(gw.port, request);
    await waitFor(() => backend.active === 2, 'two requests at the backend');
    await assert.rejects(rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n', 3_000));
    const served = await Promise.all([first, second]);
    assert.deepEqual(
      served.map((r) => r.status),
      [200, 200],
    );
    // Once they are done, a new connection is served again.
    assert.equal((await rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')).status, 200);
  });
});

describe('signals', () => {
  test('SIGTERM drains: the request in flight completes with 200, new connections are refused, exit code 0', async () => {
    const gw = await spawn();
    const inFlight = client.request(`${gw.url}/slow?ms=1500`);
    await waitFor(() => backend.active === 1, 'the slow request at the backend');
    gw.signal('SIGTERM');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 'Gateway Stopping');
    await sleep(100);
    await assert.rejects(openSocket(gw.port), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.json().slow, true);
    assert.equal(res.headers.connection, 'close');
    assert.deepEqual(await gw.exited, { code: 0, signal: null });
    assert.equal(gw.logs.find((l) => l.msg === 'Gateway Stopped')?.drained, true);
  });

  test('SIGINT stops the gateway with exit code 0', async () => {
    const gw = await spawn();
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
    gw.signal('SIGINT');
    assert.deepEqual(await gw.exited, { code: 0, signal: null });
  });
});

describe('command line', () => {
  test('check-config with a bad file: exit 1, one stderr line naming the key path, no stack', async () => {
    assertOneLineConfigError(await runCli(['check-config', '--config', badConfig('strategy')]), 'load_balancing.strategy');
    assertOneLineConfigError(await runCli(['check-config', '--config', badConfig('typo')]), 'server.listen_prot');
  });

  test('start with an invalid config: exit 1, one stderr line naming the key path, no stack', async () => {
    assertOneLineConfigError(await runCli(['start', '--config', badConfig('strategy')]), 'load_balancing.strategy');
  });

  test('--help and --version', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: portcullis/);
    assert.match(help.stdout, /check-config/);
    // The identity commands' usage lines (commands/help.ts) are part of it.
    assert.match(help.stdout, /users set-password EMAIL\|ID/);
    assert.match(help.stdout, /api-keys create NAME/);
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    assert.equal(version.stdout.trim(), VERSION);
  });

  test('PORTCULLIS_CONFIG names the config when --config is absent', async () => {
    const file = writeConfig({ load_balancing: { upstreams: upstreams([backend.port]) } });
    const checked = await runCli(['check-config'], { PORTCULLIS_CONFIG: file });
    assert.equal(checked.code, 0, checked.stderr);
    assert.equal(checked.stdout.trim(), `config ok: ${file}`);
    const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start'], file, {
      env: { PORTCULLIS_CONFIG: file },
    });
    running.push(gw);
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
    gw.signal('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('npm start -- --config FILE starts the gateway; SIGTERM to its process group stops it cleanly', async () => {
    const file = writeConfig({ load_balancing: { upstreams: upstreams([backend.port]) } });
    const gw = await startProcess('npm', ['start', '--', '--config', file], file, { group: true, timeoutMs: 20_000 });
    running.push(gw);
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
    // npm may not forward signals to the script, so the whole group is signalled, as a terminal's Ctrl-C would.
    gw.signal('SIGTERM');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopped'), 'Gateway Stopped', 10_000);
    await gw.exited;
  });
});
