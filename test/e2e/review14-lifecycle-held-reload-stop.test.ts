// A multi-worker reload is two-phase: a worker prepares it (a plugin's create() included) and holds it until every
// worker has. A worker told to stop while it holds one must close the plugin instances it created for it, as it
// closes those of a reload still preparing, during its stop (before its stores close: a close() may still write to
// api.store): a plugin's close() releases what its create() took (a file lock, a connection), and nobody else will.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { rewriteConfig, spawnGateway, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { endGroup, workerPids } from '../helpers/workers.js';

test('a worker stopped while it holds a prepared reload closes the plugin instance it created for it', async () => {
  const backend = await startBackend('one');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-held-'));
  const closed = join(dir, 'closed.txt');
  const plugin = join(dir, 'closing.mjs');
  writeFileSync(
    plugin,
    `import { appendFileSync } from 'node:fs';
     export default {
       name: 'closing',
       create(config, api) {
         return {
           onResponse() {},
           close() {
             api.logger.info({ tag: config.tag }, 'instance closed');
             appendFileSync(config.closed, config.tag + ' ' + process.pid + '\\n');
           },
         };
       },
     };`,
  );
  const config = (tag: number): ConfigInput => ({
    server: { workers: 2 },
    admin: { enabled: false },
    logging: { level: 'debug' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'closing', module: plugin, config: { tag, closed } }],
    middleware: { plugins: ['closing'] },
  });
  const gw = await spawnGateway(config(1), { group: true });
  after(async () => {
    await endGroup(gw);
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
  const [holder, stuck] = workerPids(gw.child.pid!);
  assert.ok(holder !== undefined && stuck !== undefined);

  // With one worker stopped, the other prepares the reload and holds it: the round waits for the stopped one.
  process.kill(stuck, 'SIGSTOP');
  try {
    rewriteConfig(gw, config(2));
    gw.signal('SIGHUP');
    await waitFor('a worker to hold the reload', () => gw.logs.some((l) => l.msg === 'Config Prepared'), 10_000);
    assert.ok(!gw.logs.some((l) => l.msg === 'Config Reloaded'));
    process.kill(holder, 'SIGTERM');
    await waitFor(
      "the holder to close both its instances, the running one and the held reload's",
      () => existsSync(closed) && readFileSync(closed, 'utf8').includes(`2 ${holder}\n`),
      10_000,
    );
    assert.ok(readFileSync(closed, 'utf8').includes(`1 ${holder}\n`));
    // Closed by the holder's stop itself, as the instances it runs are, before its stores: not only once the worker's
    // channel to the primary has gone, after its stop has ended (the only worker logging now is the holder).
    await waitFor('the holder to stop', () => gw.logs.some((l) => l.msg === 'Gateway Stopped'), 10_000);
    const heldClosed = gw.logs.findIndex((l) => l.msg === 'instance closed' && l.tag === 2);
    assert.ok(heldClosed >= 0 && heldClosed < gw.logs.findIndex((l) => l.msg === 'Gateway Stopped'), 'closed during the stop');
    assert.equal(readFileSync(closed, 'utf8').split(`2 ${holder}\n`).length, 2, 'closed once');
  } finally {
    process.kill(stuck, 'SIGCONT');
  }
});
