// The bounds of a plugin's one-time steps hold in a real process: a create() that never settles is the documented
// config error at plugin_load_timeout and exit 1 (not node's silent exit 13 for an unsettled top-level await, which
// an unref'd timer allowed), a close() that never settles is abandoned at the bound on shutdown, and check-config
// exits as soon as its verdict is out, whatever a late create() still holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { spawnGateway, tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { fixture } from './helpers.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const TIMED_OUT = /portcullis: config error: plugins\[0\]: create\(\) did not finish within 400 ms \(middleware\.plugin_load_timeout\)/;

function stuck(config: Record<string, unknown>) {
  return {
    load_balancing: { upstreams: upstreams([9]) },
    plugins: [{ name: 'stuck', module: fixture('stuck.mjs'), config }],
    middleware: { plugins: ['stuck'], plugin_load_timeout: '400ms' },
  };
}

/** Runs `portcullis <args>`: its code (null when still running after 20 s: then it is killed), output and duration. */
function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const dataDir = tempDataDir();
  const started = performance.now();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, ...args], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    void childExit(child).then(({ code }) => {
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    }),
  );
}

for (const command of ['check-config', 'start']) {
  test(`${command}: a create() that never settles is a config error at plugin_load_timeout, exit 1`, async () => {
    const { code, stderr } = await run([command, '--config', writeConfig(stuck({ create: 'never' }))]);
    assert.match(stderr, TIMED_OUT);
    assert.equal(code, 1, stderr);
  });

  test(`${command}: exits with its verdict at the bound, not when a late create() finally resolves`, async () => {
    // The late create() holds a 30 s timer: the process must not wait for it.
    const { code, stderr, ms } = await run([command, '--config', writeConfig(stuck({ create: 30_000 }))]);
    assert.match(stderr, TIMED_OUT);
    assert.equal(code, 1, stderr);
    assert.ok(ms < 15_000, `exited after ${Math.round(ms)} ms`);
  });
}

test('check-config: a passing check exits 0 once its verdict is out, whatever the plugin left running', async () => {
  const { code, stdout, stderr, ms } = await run(['check-config', '--config', writeConfig(stuck({ create: 0, leak: true }))]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^config ok: /);
  assert.ok(ms < 15_000, `exited after ${Math.round(ms)} ms`);
});

test('check-config: a close() that never settles is abandoned at plugin_load_timeout (logged), and the check passes', async () => {
  const { code, stdout, stderr } = await run(['check-config', '--config', writeConfig(stuck({ create: 0, close: 'never' }))]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^config ok: /);
  const line = JSON.parse(stderr.split('\n').find((l) => l.includes('Plugin Timed Out')) ?? '{}') as Record<string, unknown>;
  assert.equal(line.hook, 'close');
  assert.equal(line.timeout_ms, 400);
});

test('start: a close() that never settles is abandoned at plugin_load_timeout on shutdown, and the stop completes', async () => {
  const gw = await spawnGateway({ ...stuck({ close: 'never' }), logging: { format: 'json', level: 'info' } });
  try {
    gw.signal('SIGTERM');
    const { code } = await gw.exited;
    assert.equal(code, 0, gw.stderr());
    const timedOut = gw.logs.find((line) => line.msg === 'Plugin Timed Out');
    assert.equal(timedOut?.hook, 'close');
    assert.equal(timedOut?.plugin, 'stuck');
    assert.ok(gw.logs.some((line) => line.msg === 'Gateway Stopped'));
  } finally {
    await gw.cleanup();
  }
});
