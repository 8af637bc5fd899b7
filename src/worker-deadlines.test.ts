// The primary's deadlines for a worker: start (plugins, PostgreSQL migrations), reload (plugins), stop (drain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from './config/load.js';
import { applyDeadlineMs, startDeadlineMs, stopDeadlineMs } from './worker-deadlines.js';

const base = { load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 9 }] } };
const plugins = (n: number) => ({
  plugins: Array.from({ length: n }, (_, i) => ({ name: `p${i}`, module: `./p${i}.mjs` })),
  middleware: { plugins: Array.from({ length: n }, (_, i) => `p${i}`), plugin_load_timeout: '2s', plugin_timeout: '500ms' },
});

test('defaults: 10 s to start or apply a reload, 20 s to stop', () => {
  const config = parseConfigObject(base);
  assert.equal(applyDeadlineMs(config), 10_000);
  assert.equal(startDeadlineMs(config), 10_000);
  assert.equal(stopDeadlineMs(config), 20_000);
});

test('each plugin adds its import and create() budgets (plugin_load_timeout) to a start and a reload, plus one for the close()s', () => {
  const config = parseConfigObject({ ...base, ...plugins(3) });
  assert.equal(applyDeadlineMs(config), 3 * 2 * 2_000 + 2_000 + 10_000);
  assert.equal(startDeadlineMs(config), applyDeadlineMs(config));
  assert.equal(stopDeadlineMs(config), 10_000 + 2 * 2_000 + 10_000, 'a create() under way, then the close()s');
});

test('a start-up with auth on may wait for the migration lock: the migration budget (60 s) is added; auth off adds nothing', () => {
  const postgres = { url: 'postgres://gateway@127.0.0.1/gateway' };
  const on = parseConfigObject({ ...base, database: postgres, middleware: { auth: { enabled: true } } });
  assert.equal(startDeadlineMs(on), 10_000 + 60_000);
  assert.equal(applyDeadlineMs(on), 10_000, 'a reload never migrates');
  // SQLite: the primary migrates before forking, but a worker's migrate() still waits up to 60 s for the write lock.
  const sqlite = parseConfigObject({ ...base, middleware: { auth: { enabled: true } } });
  assert.equal(startDeadlineMs(sqlite), 10_000 + 60_000);
  assert.equal(applyDeadlineMs(sqlite), 10_000, 'a reload never migrates');
  assert.equal(startDeadlineMs(parseConfigObject({ ...base, database: postgres })), 10_000);
});

test('a start-up with Redis may wait redis.command_timeout for its first connection: added to the start deadline only', () => {
  const redis = parseConfigObject({ ...base, redis: { url: 'redis://127.0.0.1:6379', command_timeout: '3s' } });
  assert.equal(startDeadlineMs(redis), 10_000 + 3_000);
  assert.equal(applyDeadlineMs(redis), 10_000, 'a reload keeps its connection');
});

test('the stop deadline follows server.timeouts.shutdown_drain', () => {
  const config = parseConfigObject({ ...base, server: { timeouts: { shutdown_drain: '2m' } } });
  assert.equal(stopDeadlineMs(config), 120_000 + 10_000);
});

test('deadlines summed from durations at the config cap stay within a Node.js timer (a longer one fires after 1 ms)', () => {
  const config = parseConfigObject({
    ...base,
    ...plugins(2),
    server: { timeouts: { shutdown_drain: '30d' } },
    middleware: { plugins: ['p0', 'p1'], plugin_load_timeout: '30d' },
  });
  for (const deadline of [applyDeadlineMs(config), startDeadlineMs(config), stopDeadlineMs(config)]) assert.equal(deadline, 2_147_483_647);
});
