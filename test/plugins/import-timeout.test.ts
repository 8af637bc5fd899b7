// A plugin module whose import never finishes (a top-level await that never settles) is a config error after
// middleware.plugin_load_timeout: check-config and start-up exit 1 with it, a reload is refused with it and the old
// config keeps serving.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { fixture } from './helpers.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const HANGS = /plugins\[0\]\.module: cannot load .*hang\.mjs: import did not finish within 400 ms \(middleware\.plugin_load_timeout\)/;
const hanging = {
  plugins: [{ name: 'hang', module: fixture('hang.mjs') }],
  middleware: { plugins: ['hang'], plugin_load_timeout: '400ms' },
};

/** Runs `portcullis <args>`; a process still running after `ms` is killed (code null). */
function runFor(args: readonly string[], ms: number): Promise<{ code: number | null; stderr: string }> {
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, ...args], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    void childExit(child).then(({ code }) => {
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      resolve({ code, stderr });
    }),
  );
}

for (const command of ['check-config', 'start']) {
  test(`${command} exits 1 naming the module whose import never finishes`, async () => {
    const config = writeConfig({ load_balancing: { upstreams: upstreams([9]) }, ...hanging });
    const { code, stderr } = await runFor([command, '--config', config], 15_000);
    assert.equal(code, 1, stderr);
    assert.match(stderr, HANGS);
  });
}

test('a reload whose plugin import never finishes is refused and the running config keeps serving', async () => {
  const backend = await startBackend('echo');
  after(() => backend.stop());
  const base = {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
  };
  const gw = await startInProcess(base);
  after(() => gw.close());
  // Bounded here too, so that a reload that never settles fails the test instead of hanging it.
  const never = new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting').unref());
  const outcome = await Promise.race([gw.gateway.reload(parseConfigObject({ ...base, ...hanging })).then(() => 'applied', (err: Error) => err), never]);
  assert.ok(outcome instanceof Error, `reload: ${String(outcome)}`);
  assert.equal(outcome.name, 'ConfigError');
  assert.match(outcome.message, HANGS);
  assert.equal((await fetch(`${gw.url}/x`)).status, 200);
});
