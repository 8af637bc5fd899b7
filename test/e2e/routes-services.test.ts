// Services behind routes: exact weighted splits, skipping a dead service, per-service timeouts and retries, and a
// reload that swaps the whole route table under load without failing a request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { closedPort, startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { loadConfigFile } from '../../src/config/load.js';

const svc = (port: number, extra: Record<string, unknown> = {}) => ({ upstreams: [{ name: `p${port}`, address: '127.0.0.1', port }], ...extra });

test('a weighted split is exact over 1,000 requests (90/10), and a service with no healthy upstream is skipped', async () => {
  const [stable, canary] = await Promise.all([startBackend('stable'), startBackend('canary')]);
  const gw = await startInProcess({
    services: { stable: svc(stable.port), canary: svc(canary.port) },
    routes: [{ name: 'api', match: { path_prefix: '/' }, split: [{ service: 'stable', weight: 90 }, { service: 'canary', weight: 10 }] }],
  });
  try {
    const counts: Record<string, number> = { stable: 0, canary: 0 };
    // In batches: the split picks a service per request in arrival order, so concurrency does not change the count.
    for (let batch = 0; batch < 50; batch++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => gw.gateway.inject({ url: `/r/${batch}/${i}` })));
      for (const res of answers) counts[res.json<EchoBody>().backend]!++;
    }
    assert.deepEqual(counts, { stable: 900, canary: 100 });
    // The canary dies: its connection failure cools it down, and the split sends everything to stable meanwhile.
    await canary.stop();
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      const res = await gw.gateway.inject({ url: `/after/${i}` });
      if (res.status !== 200) failed++;
      else assert.equal(res.json<EchoBody>().backend, 'stable');
    }
    assert.equal(failed, 0, 'the failed attempt is retried within the service, then the split skips it');
  } finally {
    await gw.close();
    await Promise.all([stable.stop(), canary.stop()]);
  }
});

test('per-service and per-route timeouts: 504 after the shorter one; retries follow the service setting', async () => {
  const slow = await startBackend('slow');
  const dead = await closedPort();
  const ok = await startBackend('ok');
  const gw = await startInProcess({
    services: {
      slow: svc(slow.port, { timeouts: { upstream_response: '300ms' } }),
      patient: svc(slow.port),
      flaky: { upstreams: [{ name: 'dead', address: '127.0.0.1', port: dead }, { name: 'ok', address: '127.0.0.1', port: ok.port }], retries: 1 },
      noretry: { upstreams: [{ name: 'dead', address: '127.0.0.1', port: dead }, { name: 'ok', address: '127.0.0.1', port: ok.port }], retries: 0 },
    },
    routes: [
      { name: 'slow', match: { path_prefix: '/slow' }, service: 'slow' },
      { name: 'hurried', match: { path_prefix: '/hurry' }, service: 'patient', timeouts: { upstream_response: '300ms' }, strip_prefix: true },
      { name: 'patient', match: { path_prefix: '/patient' }, service: 'patient', strip_prefix: true },
      { name: 'flaky', match: { path_prefix: '/flaky' }, service: 'flaky' },
      { name: 'noretry', match: { path_prefix: '/noretry' }, service: 'noretry' },
    ],
  });
  try {
    const client = createClient();
    assert.equal((await client.request(`${gw.url}/slow?ms=2000`)).status, 504);
    assert.equal((await client.request(`${gw.url}/hurry/slow?ms=2000`)).status, 504);
    assert.equal((await client.request(`${gw.url}/patient/slow?ms=400`)).status, 200);
    // Round robin starts at the dead upstream: with one retry the request lands on the live one.
    for (let i = 0; i < 4; i++) assert.equal((await client.request(`${gw.url}/flaky/${i}`)).status, 200);
    const statuses = new Set<number>();
    for (let i = 0; i < 2; i++) statuses.add((await client.request(`${gw.url}/noretry/${i}`)).status);
    assert.ok(statuses.has(502), 'without retries the dead upstream answers 502 once');
    await client.close();
  } finally {
    await gw.close();
    await Promise.all([slow.stop(), ok.stop()]);
  }
});

test('a reload swaps the whole route table under load with zero failed requests, keeping unchanged pools', async () => {
  const [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  const first = {
    services: { a: svc(a.port), b: svc(b.port) },
    routes: [{ name: 'one', match: { path_prefix: '/' }, service: 'a' }],
  };
  const gw = await startInProcess(first);
  const client = createClient({ connections: 8 });
  try {
    let stop = false;
    let failures = 0;
    let total = 0;
    const seen = new Set<string>();
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const res = await client.request(`${gw.url}/x`);
        total++;
        if (res.status !== 200) failures++;
        else seen.add(res.json<EchoBody>().backend);
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const next = {
      ...first,
      server: { listen_host: '127.0.0.1', listen_port: 0 },
      admin: { listen_host: '127.0.0.1', listen_port: 0 },
      logging: { format: 'json', level: 'info' },
      routes: [{ name: 'two', match: { path_prefix: '/' }, service: 'b' }],
    };
    const file = `${gw.dataDir}/next.yaml`;
    writeFileSync(file, stringify(next));
    await gw.gateway.reload(loadConfigFile(file));
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(load);
    assert.equal(failures, 0, `${failures} of ${total} requests failed`);
    assert.deepEqual([...seen].sort(), ['a', 'b']);
    const after = await client.request(`${gw.url}/x`);
    assert.equal(after.json<EchoBody>().backend, 'b');
    const done = gw.logs.filter((l) => l.msg === 'Request Completed').at(-1);
    assert.equal(done?.route, 'two');
  } finally {
    await client.close();
    await gw.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('failed authentications count against the client address: a flood of bad tokens meets 429', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'e', address: '127.0.0.1', port: backend.port }] },
    jwt: { secret: 'x'.repeat(40) },
    middleware: {
      auth: { enabled: true, argon2: { memory_kib: 1024, iterations: 1, parallelism: 1 } },
      rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 3 },
    },
  });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      statuses.push((await gw.gateway.inject({ url: '/x', headers: { authorization: `Bearer bad.${i}.token` }, remoteAddress: '198.51.100.7' })).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    // Another address is not affected.
    assert.equal((await gw.gateway.inject({ url: '/x', remoteAddress: '198.51.100.8' })).status, 401);
  } finally {
    await gw.close();
    await backend.stop();
  }
});
