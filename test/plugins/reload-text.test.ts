// A reload refused because a plugin's create() failed: the admin API's answer and the Config Rejected line name the
// instance, the phase and the error's class, never what the plugin threw (its message or code may hold a password).
// A real gateway process, reloaded through POST /reload and SIGHUP.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { fixture } from './helpers.js';

const client = createClient();
after(() => client.close());

const REASON = 'plugins[0]: create() failed: ConnectFailed thrown by plugin "db" (its message is not shown)';

test("a reload refused by a plugin's create() carries no plugin-thrown text to the admin answer or the log", async () => {
  const backend = await startBackend('a');
  after(() => backend.stop());
  const base: ConfigInput = { load_balancing: { upstreams: upstreams([backend.port]) } };
  const gw = await spawnGateway(base, { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const admin = `http://127.0.0.1:${gw.adminPort}`;

  for (const create of ['throw', 'reject', 'then-throws']) {
    copyFileSync(
      writeConfig({ ...base, plugins: [{ name: 'db', module: fixture('leaky.mjs'), config: { create } }], middleware: { plugins: ['db'] } }),
      gw.configFile,
    );
    const res = await client.request(`${admin}/reload`, { method: 'POST' });
    assert.equal(res.status, 400, create);
    assert.deepEqual(res.json(), { status: 'rejected', reason: REASON }, create);
    assert.ok(!res.text.includes('hunter2'), create);
  }
  gw.signal('SIGHUP');
  await waitFor('"Config Rejected" after SIGHUP', () => gw.logs.filter((l) => l.msg === 'Config Rejected').length === 4, 10_000);
  const rejected = gw.logs.filter((l) => l.msg === 'Config Rejected');
  assert.deepEqual(
    rejected.map((l) => [l.level, l.reason]),
    rejected.map(() => [50, REASON]),
  );
  const everything = JSON.stringify(gw.logs) + gw.stderr();
  assert.ok(!everything.includes('hunter2') && !everything.includes('postgres://'), 'a plugin-thrown text reached the log');
  assert.equal((await client.request(`${gw.url}/still-here`)).status, 200, 'the running config keeps serving');
});
