// `server.workers: 2`: two worker processes share one port and, through Redis, one set of buckets; without
// redis.url the combination is refused at start-up.
import { test, after } from 'node:test';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { getHealthMany, runCli, spawnGateway, startProcess, upstreams, writeConfig } from '../helpers/gateway.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import {
  authConfig,
  deleteRedisKeys,
  freshGet,
  rateLimitConfig,
  REDIS_URL,
  requireRedis,
  runId,
  statusCounts,
} from './ratelimit-helpers.js';

const keyPrefix = `portcullis-test:scale-workers:${runId()}:`;
const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing

test('two workers with Redis: 15 rapid requests over fresh connections give exactly 10 passes', { skip: skipRedis }, async () => {
  const backend = await startBackend('one');
  const gw = await spawnGateway({
    server: { workers: 2 },
    redis: { url: REDIS_URL, key_prefix: keyPrefix },
    load_balancing: { upstreams: upstreams([backend.port]) },
    // Burst 10 at 1 token/min: exact whatever the timing (see EXACT_RULE in ratelimit-helpers.ts).
    middleware: { rate_limit: rateLimitConfig() },
  });
  after(async () => {
    await gw.cleanup();
    await backend.stop();
    await deleteRedisKeys(REDIS_URL, keyPrefix);
  });
  // spawnGateway returns at the first worker's "Gateway Started"; wait for the second, or it would get no traffic.
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);

  // A new TCP connection per request: the primary hands connections to the workers in turn.
  const responses = [];
  for (let i = 0; i < 15; i++) responses.push(await freshGet(`${gw.url}/w/${i}`));
  assert.deepEqual(statusCounts(responses), { 200: 10, 429: 5 });
  assert.deepEqual(
    responses.slice(0, 10).map((r) => r.headers['ratelimit-remaining']),
    ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'],
    'one bucket, counted down by both workers',
  );

  // Proof that both workers answered: the admin port belongs to worker 1 only, and its metrics saw only some of
  // the 15 decisions. (Were it all 15, the other worker never served, and the test would prove nothing.)
  // (gw.adminPort is read from whichever worker logged first, so look for the line that names one.)
  const adminPort = gw.logs.find((l) => l.msg === 'Gateway Started' && typeof l.admin_port === 'number')?.admin_port;
  assert.equal(typeof adminPort, 'number', 'worker 1 runs the admin listener');
  const metrics = await freshGet(`http://127.0.0.1:${String(adminPort)}/metrics`);
  const seen =
    (sampleValue(metrics.text, 'portcullis_rate_limit_decisions_total', { decision: 'pass', route: 'proxy' }) ?? 0) +
    (sampleValue(metrics.text, 'portcullis_rate_limit_decisions_total', { decision: 'reject', route: 'proxy' }) ?? 0);
  assert.ok(seen > 0 && seen < 15, `worker 1 decided ${seen} of 15 requests`);
});

/** `portcullis start` with `input`; resolves with its exit code and output. */
async function startExpectingFailure(input: Record<string, unknown>) {
  const backend = await startBackend('unused');
  try {
    return await runCli(['start', '--config', writeConfig({ load_balancing: { upstreams: upstreams([backend.port]) }, ...input })]);
  } finally {
    await backend.stop();
  }
}

for (const [what, middleware] of [
  ['the rate limiter', { rate_limit: rateLimitConfig() }],
  ['auth', { auth: authConfig() }],
] as const) {
  test(`two workers without redis.url while ${what} is on: start-up refused, exit 1, one line naming server.workers`, async () => {
    const result = await startExpectingFailure({ server: { workers: 2 }, middleware });
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line: ${result.stderr}`);
    assert.match(lines[0]!, /server\.workers/);
    assert.match(lines[0]!, /redis\.url/);
    assert.doesNotMatch(result.stdout, /Gateway Started/);
  });
}

test('two workers without Redis start when neither the limiter nor auth needs shared state', async () => {
  // Counter-check of the refusal above: it is about shared state, not about workers as such.
  const backend = await startBackend('one');
  const gw = await spawnGateway({ server: { workers: 2 }, load_balancing: { upstreams: upstreams([backend.port]) } });
  after(async () => {
    await gw.cleanup();
    await backend.stop();
  });
  assert.equal((await freshGet(`${gw.url}/plain`)).status, 200);
});

test('SIGTERM to the primary of two workers: both stop and the process exits 0 (no IPC channel left holding them)', async () => {
  const backend = await startBackend('one');
  const gw = await spawnGateway({ server: { workers: 2 }, load_balancing: { upstreams: upstreams([backend.port]) } });
  after(async () => {
    await gw.cleanup();
    await backend.stop();
  });
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
  assert.equal((await freshGet(`${gw.url}/before-stop`)).status, 200);
  gw.signal('SIGTERM');
  const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000).unref())]);
  assert.deepEqual(outcome, { code: 0, signal: null }, 'the primary exits by itself once its workers have');
  assert.equal(gw.logs.filter((l) => l.msg === 'Gateway Stopped').length, 2, 'each worker drained and logged its stop');
});

/**
 * A log reader slower than the gateway writes: 16 KiB, then 40 ms of nothing (about 400 KB/s), 512 bytes a read,
 * as a log shipper that falls behind. Written next to `config`; read by `node <file>` from its stdin.
 */
function slowReader(config: string): string {
  const file = join(dirname(config), 'slow-reader.cjs');
  writeFileSync(
    file,
    `const { readSync, writeSync } = require('node:fs');
     const chunk = Buffer.alloc(512);
     const pause = new Int32Array(new SharedArrayBuffer(4));
     for (let reads = 1, n; (n = readSync(0, chunk, 0, 512, null)) > 0; reads++) {
       writeSync(1, chunk, 0, n);
       if (reads % 32 === 0) Atomics.wait(pause, 0, 0, 40);
     }`,
  );
  return file;
}

test('two workers and the primary share one stdout pipe: a slow reader still gets every log line whole', async () => {
  // stdout is a real pipe, read by a reader slower than the gateway writes: the workers block on a full pipe with
  // writes pending. Each write must hold whole lines and fit in PIPE_BUF, or the rest of a write lands after the
  // other worker's bytes (LineWriterOptions.shared).
  const config = writeConfig({
    server: { workers: 2 },
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([9]) }, // never reached: /health is the gateway's own
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
  });
  const node = `"${process.execPath}"`;
  const command = `${node} bin/portcullis.js start --config "${config}" | ${node} "${slowReader(config)}"`;
  after(() => rmSync(dirname(config), { recursive: true, force: true }));
  const gw = await startProcess('bash', ['-c', command], config, { group: true });
  after(() => gw.cleanup());
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
  const requests = 3000;
  await getHealthMany(gw.url, requests);
  const completed = (): number => gw.logs.filter((l) => l.msg === 'Request Completed').length;
  await waitFor(`${requests} Request Completed lines`, () => completed() + gw.garbled.length >= requests, 30_000);
  assert.deepEqual(gw.garbled.slice(0, 3), [], 'no line cut by another process');
  assert.equal(completed(), requests);
});
