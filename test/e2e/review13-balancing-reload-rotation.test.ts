// What a reload keeps of the balancing. A split's rotation started over at every reload (each builds new selectors),
// so a route reloaded every few requests gave its first arm everything: at 90:10 with a reload every 5 requests the
// canary got none of 50. A service's rotation started over when a reload changed only a pool setting (queue_limit),
// since its upstreams got new pools. And two entries of one address:port in a service were merged by every reload
// (pool closed, in-flight count moved, rotation restarted): they are now a config error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { runCli, startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const backends = await Promise.all(['stable', 'canary', 'other'].map((n) => startBackend(n)));
const client = createClient();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review13-rotation-'));
after(async () => {
  await client.close();
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** What startInProcess would add, given to the reloads as well (a listener cannot change on reload). */
const LISTENERS: ConfigInput = {
  server: { listen_host: '127.0.0.1', listen_port: 0 },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'warn' },
};

const service = (port: number, queueLimit = 1024): ConfigInput => ({
  upstreams: [{ name: 'u', address: '127.0.0.1', port }],
  health_check: { enabled: false },
  queue_limit: queueLimit,
});

/** A split route at `weights`; `tag` changes a route the split does not use, so each reload has something to do. */
const splitConfig = (weights: [number, number], tag: number): ConfigInput => ({
  ...LISTENERS,
  services: { stable: service(backends[0]!.port), canary: service(backends[1]!.port) },
  routes: [
    { name: 'r', match: { path_prefix: '/' }, split: [{ service: 'stable', weight: weights[0] }, { service: 'canary', weight: weights[1] }] },
    { name: `other-${tag}`, match: { path: `/other-${tag}` }, service: 'stable' },
  ],
});

async function pick(url: string): Promise<string> {
  const res = await client.request(`${url}/s`);
  assert.equal(res.status, 200, res.text);
  return (JSON.parse(res.text) as EchoBody).backend;
}

test("a split's rotation goes on across reloads that leave its arms as they were", async () => {
  const gw = await startInProcess(splitConfig([1, 1], 0));
  try {
    const seen: string[] = [];
    for (let i = 1; i <= 6; i++) {
      seen.push(await pick(gw.url));
      await gw.gateway.reload(parseConfigObject(splitConfig([1, 1], i)));
    }
    assert.deepEqual(seen, ['stable', 'canary', 'stable', 'canary', 'stable', 'canary']);

    await gw.gateway.reload(parseConfigObject(splitConfig([9, 1], 0)));
    const counts = { stable: 0, canary: 0 } as Record<string, number>;
    for (let i = 1; i <= 50; i++) {
      counts[await pick(gw.url)]!++;
      if (i % 5 === 0) await gw.gateway.reload(parseConfigObject(splitConfig([9, 1], i)));
    }
    assert.deepEqual(counts, { stable: 45, canary: 5 }, 'exact over time, reloads or not');
  } finally {
    await gw.close();
  }
});

test("a reload that changes only a pool setting keeps the service's rotation", async () => {
  const config = (queueLimit: number): ConfigInput => ({
    ...LISTENERS,
    load_balancing: { upstreams: upstreams([backends[0]!.port, backends[2]!.port]), health_check: { enabled: false }, queue_limit: queueLimit },
  });
  const gw = await startInProcess(config(100));
  try {
    const seen: string[] = [];
    for (let i = 1; i <= 6; i++) {
      seen.push(await pick(gw.url));
      await gw.gateway.reload(parseConfigObject(config(100 + i)));
    }
    assert.deepEqual(seen, ['stable', 'other', 'stable', 'other', 'stable', 'other']);
  } finally {
    await gw.close();
  }
});

test('one address:port twice in a service is a config error naming the first entry', async () => {
  const file = join(dir, 'twice.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nload_balancing:\n  upstreams:\n    - {name: a1, address: 127.0.0.1, port: 3000}\n    - {name: a2, address: 127.0.0.1, port: 3000}\n',
  );
  const result = await runCli(['check-config', '--config', file]);
  assert.equal(
    result.stderr,
    'portcullis: config error: load_balancing.upstreams[1].port: 127.0.0.1:3000 is already upstream "a1" of this service (to send it more, raise its weight)\n',
  );
  assert.equal(result.code, 1);
  // The same address on another port, or in another service, is another upstream.
  writeFileSync(
    file,
    'admin: {enabled: false}\nload_balancing:\n  upstreams:\n    - {name: a1, address: 127.0.0.1, port: 3000}\n    - {name: a2, address: 127.0.0.1, port: 3001}\n' +
      'services:\n  s2: {upstreams: [{name: a1, address: 127.0.0.1, port: 3000}]}\n',
  );
  const fine = await runCli(['check-config', '--config', file]);
  assert.equal(fine.stderr, '');
  assert.equal(fine.code, 0);
});
