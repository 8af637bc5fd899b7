// Multi-worker start-up that cannot succeed (port taken): restarts back off, then the primary gives up and exits 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';

const ROOT = new URL('../../', import.meta.url).pathname;

test('workers that crash at start-up are restarted with growing delays, then the primary gives up with exit code 1', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as AddressInfo).port;
  const dataDir = tempDataDir();
  const configFile = writeConfig({
    server: { listen_port: port, workers: 5 },
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 9 }] },
    admin: { enabled: false },
  });
  const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(code, 1, `exit code (stdout: ${stdout.slice(-500)})`);
    const restarts = lines.filter((l) => l.msg === 'Worker Exited').map((l) => Number(l.restart_in_ms));
    assert.ok(restarts.length >= 3, `restarts: ${restarts.join(',')}`);
    for (let i = 1; i < restarts.length; i++) assert.ok(restarts[i]! > restarts[i - 1]!, `delays grow: ${restarts.join(',')}`);
    const gaveUp = lines.filter((l) => String(l.msg).startsWith('Workers Failing At Start-up'));
    assert.equal(gaveUp.length, 1);
    assert.equal(gaveUp[0]!.level, 50);
    assert.equal(gaveUp[0]!.crashes, 5);
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    blocker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
