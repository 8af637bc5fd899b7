// SIGHUP and SIGUSR1 sent while a gateway is still starting (a plugin's create() is slow): the process lives on, a
// SIGHUP is applied as one reload once it has started (the file may have changed after start-up read it), and a
// SIGUSR1 never opens Node's inspector.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { fixture } from '../plugins/helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
let backend: TestBackend | undefined;
after(() => backend?.stop());

function tagged(tag: number, delay: number) {
  return {
    load_balancing: { upstreams: upstreams([backend!.port]) },
    plugins: [{ name: 'tag', module: fixture('slow-tag.mjs'), config: { tag, delay } }],
    middleware: { plugins: ['tag'] },
  };
}

/** `portcullis start` on `configFile`, its JSON log lines and stderr collected; killed by the test's cleanup. */
function start(configFile: string, cleanup: (fn: () => void) => void) {
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, 'start', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup(() => {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let pending = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const logged = (msg: string, what = msg) =>
    waitFor(() => {
      if (!alive()) throw new Error(`gateway ended (${child.exitCode ?? child.signalCode}) waiting for ${what}: ${stderr}`);
      return logs.some((l) => l.msg === msg);
    }, what, 15_000);
  return { child, logs, stderr: () => stderr, alive, logged };
}

test('SIGHUP during start-up: the gateway starts, then reloads once, serving the file as it is now', async (t) => {
  backend ??= await startBackend('echo');
  // create() takes 3 s: both signals must land while it runs, on a machine that may be slow to pass the log line on.
  const configFile = writeConfig(tagged(1, 3000));
  const gw = start(configFile, (fn) => t.after(fn));
  await gw.logged('Tag Creating', 'the slow create() at start-up');
  copyFileSync(writeConfig(tagged(2, 0)), configFile);
  gw.child.kill('SIGHUP');
  gw.child.kill('SIGHUP'); // two signals, one reload
  await gw.logged('Config Reloaded');
  const port = gw.logs.find((l) => l.msg === 'Gateway Started')!.port as number;
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).headers.get('x-tag'), '2');
  assert.equal(gw.logs.filter((l) => l.msg === 'Config Reloaded').length, 1);
  assert.ok(gw.alive());
});

test('SIGUSR1 during start-up neither kills the gateway nor opens the inspector', async (t) => {
  backend ??= await startBackend('echo');
  const gw = start(writeConfig(tagged(1, 1500)), (fn) => t.after(fn));
  await gw.logged('Tag Creating', 'the slow create() at start-up');
  gw.child.kill('SIGUSR1');
  await gw.logged('Gateway Started');
  assert.ok(gw.alive());
  assert.doesNotMatch(gw.stderr(), /inspector|Debugger listening/i);
});
