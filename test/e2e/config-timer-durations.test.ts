// Durations past what a Node.js timer can hold (2^31-1 ms, about 24.8 days) are read as that longest delay. Before, a
// config check-config accepted made timers fire after 1 ms: `plugin_load_timeout: 30d` failed every plugin's create(),
// `redis.command_timeout: 30d` could time out every Redis command, and `server.timeouts.idle: 30d` printed a
// TimeoutOverflowWarning on stderr after every response. One gateway with every timer duration at 30d must behave as
// with long ones. (Health checks and the upstream queue: review-routing-health-timers.test.ts.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { startBackend } from '../helpers/backends.js';
import { createClient } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';
import { REDIS_URL, requireRedis, uniquePrefix } from '../kv/redis-helpers.js';

const client = createClient({ connections: 1 });
after(() => client.close());

const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing
const FIXTURE = new URL('../plugins/fixtures/slow-tag.mjs', import.meta.url).pathname;

test('every timer duration at 30d: plugins load, Redis answers, keep-alive connections are served, nothing on stderr', { skip: skipRedis }, async () => {
  const backend = await startBackend('echo');
  const gw = await spawnGateway({
    server: {
      timeouts: {
        header: '30d',
        request: '30d',
        idle: '30d',
        upstream_connect: '30d',
        upstream_response: '30d',
        upstream_body: '30d',
        shutdown_drain: '30d',
        request_body_chunk: '30d',
      },
    },
    redis: { url: REDIS_URL, key_prefix: uniquePrefix('timer-durations'), command_timeout: '30d' },
    load_balancing: { upstreams: upstreams([backend.port]), queue_timeout: '30d' },
    // create() takes 100 ms: past a 1 ms bound, start-up failed with a config error.
    plugins: [{ name: 'tag', module: FIXTURE, config: { tag: 'long', delay: 100 } }],
    middleware: {
      auth: { enabled: false },
      rate_limit: { enabled: true, requests_per_minute: 6000, burst_size: 100 },
      plugins: ['tag'],
      plugin_timeout: '30d',
      plugin_load_timeout: '30d',
    },
  });
  try {
    // One connection (the client holds one): the second request reuses it after a pause.
    for (let i = 0; i < 3; i++) {
      const res = await client.request(`${gw.url}/x${i}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-tag'], 'long');
      assert.ok(res.headers['ratelimit-remaining'] !== undefined, 'the Redis limiter answered');
      await sleep(100);
    }
    assert.ok(!gw.logs.some((l) => l.level !== 30), `no warning or error lines: ${JSON.stringify(gw.logs.filter((l) => l.level !== 30))}`);
    assert.equal(gw.stderr(), '', 'nothing on stderr (Node prints TimeoutOverflowWarning there)');
  } finally {
    await gw.cleanup();
    await backend.stop();
  }
});

test('server.workers: 2 with plugin_load_timeout and shutdown_drain at 30d: workers start, serve and stop cleanly', async () => {
  // The primary's deadlines add these up (worker-deadlines.ts): past a timer's longest delay, every worker was killed
  // within milliseconds as a failed start, and at SIGTERM killed without draining (exit 1).
  const backend = await startBackend('echo');
  const gw = await spawnGateway({
    server: { workers: 2, timeouts: { shutdown_drain: '30d' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tag', module: FIXTURE, config: { tag: 'w' } }],
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false }, plugins: ['tag'], plugin_load_timeout: '30d' },
  });
  try {
    for (let i = 0; i < 4; i++) assert.equal((await client.request(`${gw.url}/w${i}`)).headers['x-tag'], 'w');
    gw.signal('SIGTERM');
    const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref())]);
    assert.deepEqual(outcome, { code: 0, signal: null });
    const bad = gw.logs.filter((l) => /Killed|Timed Out|Failing/.test(String(l.msg)));
    assert.deepEqual(bad, []);
    assert.doesNotMatch(gw.stderr(), /TimeoutOverflowWarning/);
  } finally {
    await gw.cleanup();
    await backend.stop();
  }
});
