// A multi-worker reload that one worker refuses is discarded by the others, which close the plugin instances they
// created for it: each close() may take the refused config's plugin_load_timeout. A good reload asked for right after
// must not wait for those close()s in the worker: its deadline counts from the new config only, and a worker that
// misses it is killed as unresponsive (found by review of the two-phase round: a healthy worker was SIGKILLed and
// the good reload refused).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { rewriteConfig, spawnGateway, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';

test('a good reload right after a refused one is accepted while the refused one is still being closed', async () => {
  const backend = await startBackend('one');
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-refused-'));
  const plugin = join(dir, 'tagging.mjs');
  // With `once`, only the first process to create it succeeds (the file is created exclusively): one worker refuses
  // the config, the other holds it. With `hang`, close() never ends: the plugin_load_timeout bounds it.
  writeFileSync(
    plugin,
    `import { openSync } from 'node:fs';
     export default {
       name: 'tagging',
       create(config) {
         if (config.once) openSync(config.once, 'wx');
         return {
           onResponse(ctx) { ctx.responseHeaders.set('x-tag', String(config.tag)); },
           close() { if (config.hang) return new Promise(() => {}); },
         };
       },
     };`,
  );
  const config = (tag: number, loadTimeout: string, extra: Record<string, unknown> = {}): ConfigInput => ({
    server: { workers: 2 },
    admin: { listen_port: adminPort },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tagging', module: plugin, config: { tag, ...extra } }],
    middleware: { plugins: ['tagging'], plugin_load_timeout: loadTimeout },
  });
  const gw = await spawnGateway(config(1, '1s'));
  after(async () => {
    await gw.cleanup();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
  const reload = async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
    return { status: res.status, body: (await res.json()) as { reason?: string } };
  };

  rewriteConfig(gw, config(2, '20s', { once: join(dir, 'once'), hang: true }));
  assert.equal((await reload()).status, 400, 'one worker refuses it');
  // The holder now closes its tag-2 instance, for up to 20 s. The next config's deadline is 1 s per step + 10 s.
  rewriteConfig(gw, config(3, '1s'));
  const accepted = await reload();
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  assert.deepEqual(
    gw.logs.filter((l) => l.msg === 'Worker Replaced'),
    [],
    'no worker was taken for stuck',
  );
  const tags = new Set<string | null>();
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${gw.url}/t/${i}`, { headers: { connection: 'close' } });
    await res.arrayBuffer();
    tags.add(res.headers.get('x-tag'));
  }
  assert.deepEqual(tags, new Set(['3']), 'both workers run the good config');
});
