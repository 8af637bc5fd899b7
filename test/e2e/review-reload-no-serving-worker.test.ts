// A multi-worker gateway's reload asked for while no worker serves (all restarting after a crash, or still starting)
// must not accept a config no worker has applied. What was wrong: the round went to the serving workers only, and
// with none it accepted the new config at once (logged nothing, POST /reload: ok): a config every worker then
// refused (a plugin whose create() throws) became the one restarted workers start from, each failed to start, and
// after five failed starts the primary gave up and the whole gateway exited 1, where the same reload with a worker
// serving is refused and the running config stays. What is right now: the round waits for a worker to serve (a
// worker starting from the running config) and then goes to it, so the reload is refused as it would be any other
// time, and the gateway serves on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { endGroup, workerPids } from '../helpers/workers.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { freePort } from '../helpers/ports.js';

const client = createClient();
after(() => client.close());

const dir = mkdtempSync(join(tmpdir(), 'review-reload-no-serving-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const plugin = join(dir, 'refusing.mjs');
writeFileSync(
  plugin,
  `export default {
  name: 'refusing',
  create(config) {
    if (config.fail) throw new Error('refused by config');
    return {};
  },
};
`,
);

test('a reload while every worker restarts is refused by the first worker that serves, and the gateway serves on', async () => {
  const backend = await startBackend('api');
  // A fixed port: with every worker gone the cluster's listening handle closes, and port 0 would be another port then.
  const port = await freePort();
  const input = (fail: boolean): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: port, workers: 2 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    plugins: [{ name: 'refusing', module: plugin, config: { fail } }],
    middleware: { plugins: ['refusing'] },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
  });
  const gw = await spawnGateway(input(false), { group: true });
  try {
    const primary = gw.child.pid!;
    await waitFor('both workers', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
    const pids = workerPids(primary);
    assert.equal(pids.length, 2);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await waitFor('both exits seen by the primary', () => gw.logs.filter((l) => l.msg === 'Worker Exited').length === 2, 10_000);
    // No worker serves now (their replacements start 100 ms later): a reload to a config every worker refuses.
    writeFileSync(gw.configFile, stringify(input(true)));
    gw.signal('SIGHUP');
    await waitFor(
      'the reload refused',
      () => gw.logs.some((l) => l.msg === 'Config Rejected' && l.workers_refused !== undefined) || gw.logs.some((l) => /giving up/.test(String(l.msg))),
      30_000,
    );
    assert.ok(!gw.logs.some((l) => /giving up/.test(String(l.msg))), 'the primary gave up on workers that could not start from the reload\'s config');
    const res = await client.request(`${gw.url}/x`, { timeoutMs: 10_000 });
    assert.equal(res.status, 200);
    assert.equal(gw.child.exitCode, null, 'the gateway exited');
  } finally {
    await endGroup(gw);
    await backend.stop();
  }
});
