// Several workers on the in-process memory store would each keep their own rate-limit buckets, so README refuses
// `server.workers` above 1 without Redis while the limiter is on. A route naming a policy
// (`rate_limit: <policy>`) is limited whatever `middleware.rate_limit.enabled` says, yet only `enabled` was checked:
// two workers started, and a policy of burst 3 let 6 requests through (3 per worker). Such a config is now refused
// like the others: at start-up, in check-config, and on reload (the running workers keep their config).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, spawnGateway, writeConfig, upstreams, type ConfigInput } from '../helpers/gateway.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('api');
});
after(async () => {
  await backend?.stop();
});

/** A route on `policy` (or no route of its own), rate_limit.enabled off, no Redis. */
function config(workers: number, policy: string | undefined): ConfigInput {
  return {
    server: { workers },
    middleware: { rate_limit: { enabled: false, policies: { strict: { requests_per_minute: 60, burst_size: 3 } } } },
    services: { api: { upstreams: upstreams([backend.port]) } },
    routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api', ...(policy === undefined ? {} : { rate_limit: policy }) }],
  };
}

test('check-config: two workers without Redis and a route naming a policy is refused, naming server.workers', async () => {
  const result = await runCli(['check-config', '--config', writeConfig(config(2, 'strict'))]);
  assert.equal(result.code, 1, result.stdout);
  assert.match(result.stderr, /^portcullis: config error: server\.workers: more than one worker needs redis\.url/);
  // The same route on one worker, or on `default` / `off` with the limiter off, needs no shared store.
  for (const ok of [config(1, 'strict'), config(2, 'off'), config(2, undefined)]) {
    const accepted = await runCli(['check-config', '--config', writeConfig(ok)]);
    assert.equal(accepted.code, 0, accepted.stderr);
  }
});

test('a reload of two workers to a route naming a policy, without Redis, is refused and changes nothing', async (t) => {
  const gw = await spawnGateway(config(2, 'off'), { timeoutMs: 30_000 });
  t.after(() => gw.cleanup());
  // Found in the primary's file check: no worker is asked to apply it.
  copyFileSync(writeConfig(config(2, 'strict')), gw.configFile);
  gw.signal('SIGHUP');
  const deadline = Date.now() + 15_000;
  while (!gw.logs.some((l) => l.msg === 'Config Rejected') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const rejected = gw.logs.find((l) => l.msg === 'Config Rejected');
  assert.ok(rejected, 'the reload was rejected');
  assert.match(String(rejected.reason), /^server\.workers: more than one worker needs redis\.url/);
  assert.ok(!gw.logs.some((l) => l.msg === 'Config Reloaded'), 'no worker applied it');
  // Still unlimited: more requests than the policy's burst all pass.
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${gw.url}/x${i}`, { headers: { connection: 'close' } });
    await res.arrayBuffer();
    assert.equal(res.status, 200);
  }
});
