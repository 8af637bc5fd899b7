// `npm run demo`, `portcullis demo-backends` and `portcullis migrate`: the commands the README and docker-compose use.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const client = createClient();
let demo: GatewayProcess | undefined;
after(async () => {
  await client.close();
  await demo?.cleanup();
});

test('npm run demo shows round robin over backend1..3 with auth off, and stops on SIGTERM', async () => {
  // Free ports for the gateway and admin listener; the demo backends keep their documented ports 3000-3002.
  demo = await startProcess('npm', ['run', 'demo'], join(ROOT, 'config/demo.yaml'), {
    group: true,
    timeoutMs: 20_000,
    env: { PORTCULLIS_PORT: '0', ADMIN_PORT: '0', PORTCULLIS_CONFIG: '' },
  });
  const names: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await client.request(`${demo.url}/`);
    assert.equal(res.status, 200);
    names.push(res.json<{ backend: string }>().backend);
  }
  assert.deepEqual([...names].sort(), ['backend1', 'backend2', 'backend3']);
  demo.signal('SIGTERM');
  await waitFor(() => demo!.logs.some((l) => l.msg === 'Gateway Stopped'), 'Gateway Stopped', 10_000);
  await demo.exited;
});

test('portcullis demo-backends (docker-compose\'s demo service) answers on 3000-3002 until SIGTERM', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'demo-backends'], {
    cwd: ROOT,
    env: { ...process.env, DEMO_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('Demo Backends Started') && resolve());
      child.once('exit', () => reject(new Error('demo-backends exited early')));
    });
    for (const [port, name] of [[3000, 'backend1'], [3001, 'backend2'], [3002, 'backend3']] as const) {
      const res = await client.request(`http://127.0.0.1:${port}/x`);
      assert.equal(res.json<{ backend: string }>().backend, name);
    }
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0);
});

test('portcullis migrate creates the embedded schema, and running it again changes nothing', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-migrate-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: '' };
  const args = ['migrate', '--config', join(ROOT, 'config/proxy.yaml')];
  const first = await runCli(args, env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /migrations applied/);
  assert.ok(existsSync(join(dataDir, 'portcullis.db')));
  const second = await runCli(args, env);
  assert.equal(second.code, 0, second.stderr);
});
