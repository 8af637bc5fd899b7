// A multi-worker gateway stopped while a reload runs, or sent SIGHUP while it drains: the reload is abandoned, as a
// single process's is (one "Reload Abandoned" line, info), never "Config Rejected" errors nor a worker "replaced"
// (SIGTERMed again) for refusing a config while it stops; the stop stays clean (exit 0).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { fixture } from '../plugins/helpers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

/** Two workers whose plugin tags every response with `tag`, its create() taking `delay` ms. */
function tagged(tag: number, delay = 0) {
  return {
    server: { workers: 2, timeouts: { shutdown_drain: '5s' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tag', module: fixture('slow-tag.mjs'), config: { tag, delay } }],
    middleware: { plugins: ['tag'] },
  };
}

async function startTwoWorkers(): Promise<GatewayProcess> {
  const gw = await spawnGateway(tagged(1), { timeoutMs: 30_000 });
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers', 30_000);
  return gw;
}

/** The lines a stop must not write: a reload it abandoned is not a refused config, nor a worker out of step. */
function assertCleanStop(gw: GatewayProcess): void {
  const errors = gw.logs.filter((l) => l.msg === 'Config Rejected' || l.msg === 'Worker Replaced');
  assert.deepEqual(errors, [], 'no reload refusal and no replaced worker');
  assert.ok(gw.logs.some((l) => l.msg === 'Reload Abandoned'), 'the reload is logged as abandoned');
}

test('SIGTERM while the workers apply a slow reload: the reload is abandoned, the stop is clean', async (t) => {
  const gw = await startTwoWorkers();
  t.after(() => gw.cleanup());
  copyFileSync(writeConfig(tagged(2, 3_000)), gw.configFile);
  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Tag Creating' && l.tag === 2).length === 2, 'both workers preparing', 15_000);
  gw.signal('SIGTERM');
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
  assertCleanStop(gw);
});

test('SIGHUP while the workers drain: the reload is abandoned, the stop is clean', async (t) => {
  const gw = await startTwoWorkers();
  t.after(() => gw.cleanup());
  // A request that keeps a worker draining while the SIGHUP comes.
  const slow = fetch(`${gw.url}/slow?ms=1500`).then((res) => res.status);
  await waitFor(() => backend.active === 1, 'the slow request upstream');
  gw.signal('SIGTERM');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 'the stop');
  gw.signal('SIGHUP');
  assert.equal(await slow, 200, 'the request in flight is drained');
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
  assertCleanStop(gw);
});
