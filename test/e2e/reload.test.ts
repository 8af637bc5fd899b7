// Config reload of a child-process gateway under load: SIGHUP and POST /reload swap upstreams and weights with zero
// failed requests; an invalid config is rejected (logged with its reason) and the running one keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';

const client = createClient({ connections: 8 });
after(() => client.close());

/** Keep-alive request loops against the gateway until stopped; counts every answer that is not a 200. */
function startLoad(url: string, loops: number) {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      try {
        const res = await client.request(`${url}/load`, { timeoutMs: 5_000 });
        if (res.status === 200) ok++;
        else failures.push(`status ${res.status}`);
      } catch (err) {
        failures.push((err as Error).name);
      }
    }
  });
  return {
    get ok() {
      return ok;
    },
    failures,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function lb(backends: readonly TestBackend[], weights: readonly number[]): ConfigInput {
  return { load_balancing: { upstreams: upstreams(backends.map((b) => b.port), weights) } };
}

/** Rewrites the gateway's config file in place (test defaults applied the same way spawnGateway did). */
function rewrite(gw: GatewayProcess, input: ConfigInput): void {
  copyFileSync(writeConfig(input), gw.configFile);
}

function logCount(gw: GatewayProcess, msg: string): number {
  return gw.logs.filter((l) => l.msg === msg).length;
}

test('SIGHUP and POST /reload change upstreams and weights under load without a failed request', async () => {
  // Each resource is released by its own hook, registered as soon as it exists, so a failure never leaks one.
  const [a, b, c] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
  after(() => Promise.all([a.stop(), b.stop(), c.stop()]));
  const gw = await spawnGateway(lb([a, b], [1, 1]), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const admin = `http://127.0.0.1:${gw.adminPort}`;
  const load = startLoad(gw.url, 4);
  after(() => load.stop());

  await waitFor('traffic on both backends', () => a.hits > 20 && b.hits > 20, 10_000);

  // SIGHUP: b leaves, c joins with three times a's weight.
  rewrite(gw, lb([a, c], [1, 3]));
  gw.child.kill('SIGHUP');
  await waitFor('"Config Reloaded" after SIGHUP', () => logCount(gw, 'Config Reloaded') === 1, 10_000);
  // Requests sent to b before the swap finish: b idle, then a quiet margin for any still on the wire.
  await waitFor('b to finish its last requests', () => b.active === 0, 10_000);
  await sleep(500);
  const atSwap = { a: a.hits, b: b.hits, c: c.hits };
  await waitFor('traffic on the new backend', () => c.hits - atSwap.c >= 60, 10_000);
  assert.equal(b.hits, atSwap.b, 'the removed backend gets no request after the reload');
  const cDelta = c.hits - atSwap.c;
  const aDelta = a.hits - atSwap.a;
  assert.ok(cDelta > aDelta * 2, `weight 3 beats weight 1 (c ${cDelta}, a ${aDelta})`);

  // POST /reload: c leaves, b returns, a's weight goes to 2.
  rewrite(gw, lb([a, b], [2, 1]));
  const res = await client.request(`${admin}/reload`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json(), { status: 'reloaded' });
  await waitFor('c to finish its last requests', () => c.active === 0, 10_000);
  await sleep(500);
  const atSecond = { b: b.hits, c: c.hits };
  await waitFor('b back in rotation', () => b.hits - atSecond.b >= 30, 10_000);
  assert.equal(c.hits, atSecond.c, 'c gets nothing after the second reload');
  const status = (await client.request(`${admin}/api/status`)).json<{ upstreams: Array<{ name: string; weight: number }> }>();
  assert.deepEqual(
    status.upstreams.map((u) => [u.name, u.weight]),
    [
      ['b1', 2],
      ['b2', 1],
    ],
  );

  await load.stop();
  assert.deepEqual(load.failures, [], 'no request failed during the reloads');
  assert.ok(load.ok > 100, `requests served: ${load.ok}`);
});

test('an invalid config is rejected with its reason and the running config keeps serving', async () => {
  const a = await startBackend('a');
  after(() => a.stop());
  const gw = await spawnGateway(lb([a], [1]), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const admin = `http://127.0.0.1:${gw.adminPort}`;

  rewrite(gw, { load_balancing: { upstreams: [] } });
  const res = await client.request(`${admin}/reload`, { method: 'POST' });
  assert.equal(res.status, 400);
  assert.deepEqual(res.json(), { status: 'rejected', reason: 'load_balancing.upstreams: at least one upstream is required' });

  gw.child.kill('SIGHUP');
  await waitFor('"Config Rejected" after SIGHUP', () => logCount(gw, 'Config Rejected') === 2, 10_000);
  const rejected = gw.logs.filter((l) => l.msg === 'Config Rejected');
  assert.ok(rejected.every((l) => l.reason === 'load_balancing.upstreams: at least one upstream is required'));
  assert.equal(logCount(gw, 'Config Reloaded'), 0);

  const served = await client.request(`${gw.url}/still-here`);
  assert.equal(served.status, 200);
  assert.equal(served.json<{ backend: string }>().backend, 'a');

  // A setting that needs a restart is refused the same way.
  rewrite(gw, { ...lb([a], [1]), server: { max_connections: 10, listen_port: 0, listen_host: '127.0.0.2' } });
  const restartOnly = await client.request(`${admin}/reload`, { method: 'POST' });
  assert.equal(restartOnly.status, 400);
  assert.match(restartOnly.json<{ reason: string }>().reason, /need a restart/);

  // A cross-origin page cannot trigger a reload.
  const forged = await client.request(`${admin}/reload`, { method: 'POST', headers: { origin: 'http://evil.example' } });
  assert.equal(forged.status, 403);
  // Nor one whose name was rebound to 127.0.0.1 (same origin, foreign Host).
  const rebound = await client.request(`${admin}/reload`, {
    method: 'POST',
    headers: { host: `evil.example:${gw.adminPort}`, origin: `http://evil.example:${gw.adminPort}` },
  });
  assert.equal(rebound.status, 403);
  assert.equal(gw.child.exitCode, null);
});
