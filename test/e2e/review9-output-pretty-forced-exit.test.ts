// What was wrong: `logging.format: pretty` with a stdout that takes nothing (a terminal paused with Ctrl-S, a pipe
// nobody reads), and an exit that does not wait for the stop: a second SIGTERM or Ctrl-C while the gateway drains
// ("Stop Forced", exit 1). process.exit() runs pino's exit hook for its transport, which flushes the pino-pretty
// worker synchronously on the main thread: against a worker that cannot write, it waited 10 s, then threw out of
// process.exit(), and the process went on running after it had said it was exiting.
// What is right now: the transport's exit hook is the gateway's own (flushLogger: the worker gets its bounded time
// at a stop that waits; none when the process exits at once): a forced stop exits 1 at once, whatever the terminal.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { childExit } from '../helpers/child-exit.js';
import { createClient, getStatus } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const client = createClient({ connections: 16 });
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('pretty logs to a stdout nobody reads, a second SIGTERM while draining: the process exits 1 at once', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const port = await freePort();
  const config = writeConfig({
    server: { listen_port: port },
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging: { format: 'pretty' },
  });
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = childExit(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', () => undefined);
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  });
  await waitFor(async () => (await getStatus(port, '/health')) === 200, 'the gateway to listen', 15_000, 50);
  // From here on nobody reads: some 2 MB of lines fill the pipe, and the pino-pretty worker stops writing.
  child.stdout.pause();
  const pad = 'p'.repeat(12_000);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < 100) {
        const i = next++;
        assert.equal((await client.request(`http://127.0.0.1:${port}/load/${i}/${pad}`)).status, 200);
      }
    }),
  );
  // A request held 20 s keeps the stop draining; the second SIGTERM forces it.
  const held = client.request(`http://127.0.0.1:${port}/slow?ms=20000`, { timeoutMs: 30_000 }).catch(() => undefined);
  await sleep(300);
  child.kill('SIGTERM');
  await sleep(300);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 5_000)));
  const code = await Promise.race([exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  assert.equal(code, 1, stderr);
  await held;
});

test('pretty logs to a terminal that reads: a forced stop still prints its Stop Forced line, then exits 1', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const port = await freePort();
  const config = writeConfig({
    server: { listen_port: port },
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging: { format: 'pretty' },
  });
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = childExit(child);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  });
  await waitFor(async () => (await getStatus(port, '/health')) === 200, 'the gateway to listen', 15_000, 50);
  const held = client.request(`http://127.0.0.1:${port}/slow?ms=20000`, { timeoutMs: 30_000 }).catch(() => undefined);
  await sleep(300);
  child.kill('SIGTERM');
  await sleep(300);
  child.kill('SIGTERM');
  assert.equal((await exited).code, 1);
  assert.match(stdout, /Stop Forced/);
  await held;
});
