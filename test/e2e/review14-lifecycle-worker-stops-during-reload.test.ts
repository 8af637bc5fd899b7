// A worker that stops on its own (SIGTERM to it alone, an out-of-step worker the primary ends) while it prepares a
// multi-worker reload gives it up (ReloadAbandoned). The gateway is not stopping and the config is good: the round
// must not be refused for it ("Config Rejected: the gateway is stopping" at error level, and 400 to POST /reload). The
// stopping worker counts as gone; the others commit, and its replacement starts on the accepted config.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { rewriteConfig, spawnGateway, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { workerPids } from '../helpers/workers.js';

test('a worker stopping on its own while it prepares a reload does not refuse it for the others', async () => {
  const backend = await startBackend('one');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-stopping-'));
  const plugin = join(dir, 'tagging.mjs');
  const first = join(dir, 'first');
  const release = join(dir, 'release');
  // With `first`: the first process to create it writes its pid there and goes on; the other waits for `release`.
  writeFileSync(
    plugin,
    `import { existsSync, writeFileSync } from 'node:fs';
     import { setTimeout as sleep } from 'node:timers/promises';
     export default {
       name: 'tagging',
       async create(config) {
         if (config.first) {
           try { writeFileSync(config.first, String(process.pid), { flag: 'wx' }); } catch {
             while (!existsSync(config.release)) await sleep(20);
           }
         }
         return { onResponse(ctx) { ctx.responseHeaders.set('x-tag', String(config.tag)); } };
       },
     };`,
  );
  const config = (tag: number, extra: Record<string, unknown> = {}): ConfigInput => ({
    server: { workers: 2 },
    admin: { enabled: false },
    logging: { level: 'debug' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tagging', module: plugin, config: { tag, ...extra } }],
    middleware: { plugins: ['tagging'] },
  });
  const gw = await spawnGateway(config(1));
  after(async () => {
    await gw.cleanup();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const started = () => gw.logs.filter((l) => l.msg === 'Gateway Started').length;
  await waitFor('both workers to start', () => started() === 2, 15_000);

  rewriteConfig(gw, config(2, { first, release }));
  gw.signal('SIGHUP');
  await waitFor('one worker to hold the reload', () => gw.logs.some((l) => l.msg === 'Config Prepared'), 10_000);
  const holder = Number(readFileSync(first, 'utf8'));
  const stopping = workerPids(gw.child.pid!).find((pid) => pid !== holder);
  assert.ok(stopping !== undefined);
  // The other worker waits in create(); stopped now, it gives the reload up once create() returns.
  process.kill(stopping, 'SIGTERM');
  await waitFor('its stop to begin', () => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 10_000);
  writeFileSync(release, '');

  await waitFor('the holder to commit it', () => gw.logs.some((l) => l.msg === 'Config Reloaded'), 10_000);
  assert.deepEqual(
    gw.logs.filter((l) => l.msg === 'Config Rejected').map((l) => l.reason),
    [],
    'the round is not refused for a worker that stops',
  );
  await waitFor("the stopped worker's replacement to start", () => started() === 3 && !existsSync(`/proc/${stopping}`), 15_000);
  const tags = new Set<string | null>();
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${gw.url}/t/${i}`);
    await res.arrayBuffer();
    tags.add(res.headers.get('x-tag'));
  }
  assert.deepEqual(tags, new Set(['2']), 'the holder and the replacement run the reload');
});
