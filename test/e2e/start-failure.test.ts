// A single-process start-up that fails after the proxy port is bound (here: the admin port is taken) ends the
// process with code 1. Before, the error was printed but the process went on serving proxied requests with no admin
// listener, /ready or metrics, which no supervisor would notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;

test('start exits 1 when the admin port is taken, though the proxy port was already bound', async () => {
  const backend = await startBackend('one');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = await freePort();
  const config = writeConfig({
    server: { listen_host: '127.0.0.1', listen_port: port },
    admin: { listen_host: '127.0.0.1', listen_port: (taken.address() as AddressInfo).port },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const outcome = await new Promise<number | null | 'still running'>((resolve) => {
      const timer = setTimeout(() => resolve('still running'), 15_000);
      void childExit(child).then(({ code }) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    assert.equal(outcome, 1, stderr);
    assert.match(stderr, /EADDRINUSE/);
    // The proxy port is free again: nothing serves on it.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', resolve);
    });
    probe.close();
  } finally {
    child.kill('SIGKILL');
    taken.close();
    rmSync(dataDir, { recursive: true, force: true });
    await backend.stop();
  }
});
