// The access-log file: the per-request lines go there (JSON lines), SIGUSR1 reopens it after a rotation without
// losing or tearing a line, and the "single" format writes one line per request with every event's fields.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { runCli, spawnGateway, startInProcess, upstreams, writeConfig } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/** Every line of `file` parsed as JSON; a torn line fails the parse and the test. */
function jsonLines(file: string): Array<Record<string, unknown>> {
  const text = readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), `${file} ends mid-line`);
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new assert.AssertionError({ message: `torn line in ${file}: ${line.slice(0, 200)}` });
      }
    });
}

/** A gateway process appending its access lines to a file of a temp directory, a backend, and a client; all
 * removed after the test. */
async function gatewayWithAccessFile(connections?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-'));
  const file = join(dir, 'access.log');
  const backend = await startBackend('one');
  const client = createClient(connections === undefined ? {} : { connections });
  let gw: Awaited<ReturnType<typeof spawnGateway>> | undefined;
  // Registered before the gateway starts: a gateway that fails to start must not leave the backend holding the file
  // open until the runner's 10-minute timeout.
  after(async () => {
    await client.close();
    await gw?.cleanup();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  gw = await spawnGateway({
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging: { access_log_file: file },
  });
  return { file, gw, client };
}

test('access lines go to the file, and SIGUSR1 after a rename loses and tears no line', async () => {
  const { file, gw, client } = await gatewayWithAccessFile(16);

  // Load runs across three rotations: rename the file away, then signal, as logrotate's postrotate does.
  const ids = new Set<string>();
  let running = true;
  const workers = Array.from({ length: 16 }, async () => {
    while (running) {
      const res = await client.request(`${gw.url}/item?padding=${'x'.repeat(200)}`);
      assert.equal(res.status, 200);
      ids.add(String(res.headers['x-request-id']));
    }
  });
  const rotated: string[] = [];
  // Rotations are spaced by completed requests, not time, so a slow machine still rotates under load.
  const served = (n: number) => waitFor(() => ids.size >= n, `${n} requests`, 60_000);
  for (let i = 1; i <= 3; i++) {
    await served(80 * i);
    // Lines are buffered (a write per 64 KiB or per timer tick): rename only once this file has had a write, or a fast
    // machine could rotate a file that never received one (its lines then land, whole, in the next file).
    await waitFor(() => statSync(file).size > 0, 'a write to the current file');
    const old = `${file}.${i}`;
    renameSync(file, old);
    rotated.push(old);
    gw.signal('SIGUSR1');
    await waitFor(() => existsSync(file), 'the file to be created again');
  }
  await served(320);
  running = false;
  await Promise.all(workers);
  gw.signal('SIGTERM');
  const exit = await gw.exited;
  assert.equal(exit.code, 0);

  const perFile = [...rotated, file].map(jsonLines);
  for (const lines of perFile.slice(1)) assert.ok(lines.length > 0, 'each rotated file received lines');
  const all = perFile.flat();
  const completed = all.filter((l) => l.msg === 'Request Completed').map((l) => String(l.request_id));
  assert.ok(ids.size > 100, `enough requests ran (${ids.size})`);
  assert.equal(completed.length, ids.size, 'one Request Completed line per request, none lost or doubled');
  assert.deepEqual(new Set(completed), ids);
  assert.equal(all.filter((l) => l.msg === 'Request Start').length, ids.size);
  assert.equal(all.filter((l) => l.msg === 'Select Upstream').length, ids.size);
  // stdout keeps the rest of the log and none of the per-request lines.
  assert.ok(gw.logs.some((l) => l.msg === 'Gateway Started'));
  assert.ok(!gw.logs.some((l) => l.msg === 'Request Completed' || l.msg === 'Request Start'));
});

test('a reopen that cannot create the file is logged with its code, and lines keep going to the old one', async () => {
  const { file, gw, client } = await gatewayWithAccessFile();
  assert.equal((await client.request(`${gw.url}/before`)).status, 200);
  // Rotated, but the name is now taken by a directory (root can create files anywhere; not a directory's name).
  const old = `${file}.1`;
  renameSync(file, old);
  mkdirSync(file);
  gw.signal('SIGUSR1');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Reopen Failed'), 'the reopen failure to be logged');
  const warning = gw.logs.find((l) => l.msg === 'Access Log Reopen Failed')!;
  assert.equal(warning.level, 40);
  assert.equal(warning.code, 'EISDIR');
  assert.equal(warning.path, file);
  const res = await client.request(`${gw.url}/after`);
  assert.equal(res.status, 200);
  gw.signal('SIGTERM');
  assert.equal((await gw.exited).code, 0);
  const ids = jsonLines(old)
    .filter((l) => l.msg === 'Request Completed')
    .map((l) => l.request_id);
  assert.ok(ids.includes(res.headers['x-request-id']), 'the request after the failed reopen is in the old file');
});

test('access_log_format single: one line per request with the fields of all three events', async () => {
  const backend = await startBackend('one');
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging: { access_log_format: 'single' },
  });
  const client = createClient();
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
  });
  const res = await client.request(`${gw.url}/single?q=1`, { method: 'POST', body: 'x' });
  assert.equal(res.status, 200);
  const id = String(res.headers['x-request-id']);
  await waitFor(() => gw.logs.some((l) => l.request_id === id && l.msg === 'Request Completed'), 'the summary line');
  const lines = gw.logs.filter((l) => l.request_id === id);
  assert.equal(lines.length, 1, 'exactly one line for the request');
  const line = lines[0]!;
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/single');
  assert.equal(line.upstream, `127.0.0.1:${backend.port}`);
  assert.equal(line.attempts, 1);
  assert.equal(line.status, 200);
  assert.equal(typeof line.duration_ms, 'number');
  assert.equal(line.client, '127.0.0.1');
});

test('an access-log file that cannot be opened stops start-up with one clear line', async () => {
  const config = writeConfig({
    load_balancing: { upstreams: upstreams([9]) },
    logging: { access_log_file: '/nonexistent-dir/portcullis/access.log' },
  });
  const { code, stderr } = await runCli(['start', '--config', config]);
  assert.equal(code, 1);
  assert.match(stderr, /^portcullis: config error: logging\.access_log_file: cannot open \/nonexistent-dir\/portcullis\/access\.log \(ENOENT\)$/m);
  assert.equal(stderr.trim().split('\n').length, 1, 'one line, no stack trace');
});
