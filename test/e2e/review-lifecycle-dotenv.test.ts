// A reload reads ./.env again: a variable .env set takes the file's new value, and is unset once its line is gone,
// in a single process and in a multi-worker gateway alike (there the primary reads .env and hands it to the workers).
// Real environment variables still win over .env. Before the fix, a changed value was ignored ("Config Reloaded",
// yet the old value kept serving) because the first read had put it in process.env, where it then counted as real.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;

/** The backend that answered a GET on a fresh connection (fresh: a cluster's connections go to each worker in turn). */
function backendOf(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/which`, { agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(String(res.headers['x-backend'])));
    });
    req.once('error', reject);
    req.end();
  });
}

/** The backends that answered `n` requests, deduplicated. */
async function backendsOf(url: string, n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await backendOf(url));
  return [...seen].sort();
}

/** The config text: the upstream's port comes from ${UP_PORT}, else `fallback`. */
function configText(workers: number, fallback: number): string {
  return [
    'server: { listen_host: 127.0.0.1, listen_port: 0, workers: ' + workers + ' }',
    'admin: { listen_host: 127.0.0.1, listen_port: 0 }',
    'logging: { format: json, level: info }',
    'middleware: { auth: { enabled: false }, rate_limit: { enabled: false } }',
    'load_balancing:',
    '  health_check: { enabled: false }',
    '  upstreams:',
    `    - { name: up, address: 127.0.0.1, port: \${UP_PORT:-${fallback}} }`,
    '',
  ].join('\n');
}

const backends: TestBackend[] = [];
after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
});

for (const workers of [1, 2]) {
  test(`workers ${workers}: SIGHUP applies a changed .env value, and a line removed from .env unsets its variable`, async (t) => {
    const [first, second, fallback] = await Promise.all([startBackend('first'), startBackend('second'), startBackend('fallback')]);
    backends.push(first!, second!, fallback!);
    const cwd = mkdtempSync(join(tmpdir(), 'portcullis-dotenv-'));
    const configFile = join(cwd, 'proxy.yaml');
    writeFileSync(configFile, configText(workers, fallback!.port));
    writeFileSync(join(cwd, '.env'), `UP_PORT=${first!.port}\n`);
    let gw: GatewayProcess | undefined;
    t.after(async () => {
      await gw?.cleanup();
      rmSync(cwd, { recursive: true, force: true });
    });
    // UP_PORT must come from .env alone, never from the test runner's environment.
    const env = { UP_PORT: undefined };
    gw = await startProcess(process.execPath, [BIN, 'start', '--config', configFile], configFile, { cwd, env, timeoutMs: 30_000 });
    const running = gw;
    const reloaded = (): number => running.logs.filter((l) => l.msg === 'Config Reloaded').length;
    await waitFor(() => running.logs.filter((l) => l.msg === 'Gateway Started').length === workers, 'every worker to start', 30_000);
    assert.deepEqual(await backendsOf(running.url, 4), ['first']);

    writeFileSync(join(cwd, '.env'), `UP_PORT=${second!.port}\n`);
    running.signal('SIGHUP');
    await waitFor(() => reloaded() === workers, 'the reload', 15_000);
    assert.deepEqual(await backendsOf(running.url, 4), ['second'], 'the value .env has now serves');

    writeFileSync(join(cwd, '.env'), '# UP_PORT is gone\n');
    running.signal('SIGHUP');
    await waitFor(() => reloaded() === 2 * workers, 'the second reload', 15_000);
    assert.deepEqual(await backendsOf(running.url, 4), ['fallback'], 'a variable whose line is gone is unset');
    assert.equal(running.logs.filter((l) => l.msg === 'Config Rejected').length, 0);
  });
}
