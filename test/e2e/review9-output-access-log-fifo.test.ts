// What was wrong: a FIFO as `logging.access_log_file` (a log shipper's named pipe). The file was opened with a
// blocking open(2), which waits for a reader, on the main thread: with no reader, `portcullis start` hung without a
// word, never listening; a FIFO put at the path before a SIGUSR1 reopen stopped the whole gateway, every request
// hanging, until someone opened the FIFO for reading. With a reader that never reads, the blocking writes held a
// libuv thread for ever, and SIGTERM drained the requests, then the process never exited.
// What is right now: the file is opened without waiting (O_NONBLOCK): no reader is refused at once (ENXIO), as a
// start-up config error or a reopen's `Access Log Reopen Failed` warning that keeps the old file; a reader that
// never reads costs lines (held up to 16 MiB, then dropped and counted), never a request, and a stop still exits.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { runCli, spawnGateway, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient({ connections: 16 });
const dir = mkdtempSync(join(tmpdir(), 'portcullis-fifo-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

let backendPort = 0;
async function backend(): Promise<number> {
  if (backendPort === 0) {
    const b = await startBackend('api');
    cleanups.push(() => b.stop());
    backendPort = b.port;
  }
  return backendPort;
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

/** The exit of a stopped gateway, or 'still running' once `boundMs` has passed (the test then fails). */
async function exitWithin(gw: GatewayProcess, boundMs: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), boundMs)));
  const result = await Promise.race([gw.exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  return result;
}

test('a FIFO nobody reads as access_log_file: start-up stops at once with one config-error line', async () => {
  const fifo = join(dir, 'unread-at-start.fifo');
  mkfifo(fifo);
  const config = writeConfig({ load_balancing: { upstreams: upstreams([await backend()]) }, logging: { access_log_file: fifo } });
  // Bounded: a start that hangs in open(2) is killed (code null) and fails the test.
  const { code, stderr } = await runCli(['start', '--config', config], {}, { boundMs: 10_000 });
  assert.equal(code, 1, `start exited with ${code}: ${stderr}`);
  assert.equal(stderr, `portcullis: config error: logging.access_log_file: cannot open ${fifo} (ENXIO)\n`);
});

test('SIGUSR1 with a FIFO nobody reads at the path: requests go on, the reopen fails once with ENXIO, the old file is kept', async () => {
  const file = join(dir, 'access.log');
  const gw = await spawnGateway({ load_balancing: { upstreams: upstreams([await backend()]) }, logging: { access_log_file: file } });
  cleanups.push(() => gw.cleanup());
  assert.equal((await client.request(`${gw.url}/before`)).status, 200);
  // Rotated away, and the name taken by a FIFO.
  renameSync(file, `${file}.1`);
  mkfifo(file);
  gw.signal('SIGUSR1');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Reopen Failed'), 'the reopen failure to be logged');
  const res = await client.request(`${gw.url}/after`, { timeoutMs: 3_000 });
  assert.equal(res.status, 200);
  const warnings = gw.logs.filter((l) => l.msg === 'Access Log Reopen Failed');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.code, 'ENXIO');
  gw.signal('SIGTERM');
  assert.equal(await exitWithin(gw, 10_000), 0);
  const ids = readFileSync(`${file}.1`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; request_id?: string })
    .filter((l) => l.msg === 'Request Completed')
    .map((l) => l.request_id);
  assert.ok(ids.includes(String(res.headers['x-request-id'])), 'the request after the failed reopen is in the old file');
});

test('a FIFO whose reader never reads: requests served, SIGTERM still exits', async () => {
  const fifo = join(dir, 'held.fifo');
  mkfifo(fifo);
  // A reader that holds the FIFO open and never reads: the pipe's 64 KiB fill, then nothing more is taken.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  cleanups.push(() => closeSync(reader));
  const gw = await spawnGateway({
    load_balancing: { upstreams: upstreams([await backend()]) },
    logging: { access_log_file: fifo, access_log_format: 'single' },
  });
  cleanups.push(() => gw.cleanup());
  const pad = 'p'.repeat(2_000);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < 400) {
        const i = next++;
        assert.equal((await client.request(`${gw.url}/held/${i}/${pad}`, { timeoutMs: 5_000 })).status, 200);
      }
    }),
  );
  gw.signal('SIGTERM');
  // The drain finds no request; the lines the FIFO did not take wait at most 5 s, then the process exits.
  assert.equal(await exitWithin(gw, 15_000), 0);
  assert.ok(gw.logs.some((l) => l.msg === 'Gateway Stopped'));
});
