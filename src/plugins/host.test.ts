// PluginHost's prepared generations: a reload prepared (and, in a cluster worker, held until the primary decides)
// and then discarded changes nothing the running instances have, their metrics included.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from '../observability/prom-client.js';
import { parseConfigObject } from '../config/load.js';
import { createMemoryKvStore } from '../kv/memory.js';
import type { PluginApi } from './contract.js';
import { PluginHost } from './host.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-host-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// `lazy` asks for its counter when a request comes (get-or-create in a hook); `eager` makes the same one in create().
writeFileSync(join(dir, 'lazy.mjs'), `export default { name: 'lazy', create(config, api) { globalThis.lazyApi = api; return {}; } };`);
writeFileSync(
  join(dir, 'eager.mjs'),
  `export default { name: 'eager', create(config, api) { api.metrics.counter({ name: 'shared_total', help: 'x' }); return {}; } };`,
);
const base = { load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 9 }] } };
const plugin = (name: string) => ({ name, module: join(dir, `${name}.mjs`) });
const lazyCounter = () => (globalThis as unknown as { lazyApi: PluginApi }).lazyApi.metrics.counter({ name: 'shared_total', help: 'x' });

/** A host running `lazy`, and the reload to `lazy` + `eager` prepared (held, as a cluster worker holds it). */
async function holdingEager(): Promise<{ registry: Registry; host: PluginHost; held: Awaited<ReturnType<PluginHost['prepare']>> }> {
  const registry = new Registry();
  const kv = createMemoryKvStore();
  const host = new PluginHost({ logger: pino({ level: 'silent' }), kv: () => kv, registry, baseDir: dir });
  after(() => host.close());
  host.commit(await host.prepare(parseConfigObject({ ...base, plugins: [plugin('lazy')], middleware: { plugins: ['lazy'] } })));
  const held = await host.prepare(
    parseConfigObject({ ...base, plugins: [plugin('lazy'), plugin('eager')], middleware: { plugins: ['lazy', 'eager'] } }),
  );
  return { registry, host, held };
}

test('a discarded reload leaves a metric a running instance asked for meanwhile on /metrics, counting on', async () => {
  const { registry, host, held } = await holdingEager();
  // While it is held, a request on the running config: the kept instance asks for the counter the held one made.
  const counter = lazyCounter();
  counter.inc({}, 5);
  await host.discard(held);
  counter.inc({}, 1);
  assert.match(await registry.metrics(), /^portcullis_plugin_shared_total 6$/m, 'still exported, with every count');
  assert.equal(lazyCounter(), counter, 'the instance gets the same counter when it asks again');
});

test('a discarded reload removes the metrics only its own instances made', async () => {
  const { registry, host, held } = await holdingEager();
  assert.match(await registry.metrics(), /portcullis_plugin_shared_total/);
  await host.discard(held);
  assert.doesNotMatch(await registry.metrics(), /portcullis_plugin_shared_total/);
});

test('configText tells .inf, -.inf, .nan and null apart (a reload between them creates the instance anew)', async () => {
  const { configText } = await import('./host.js');
  const texts = [Infinity, -Infinity, NaN, null].map((limit) => configText({ limit }));
  assert.equal(new Set(texts).size, 4, texts.join(' | '));
  assert.equal(configText({ a: 1, b: [2, 'x'] }), JSON.stringify({ a: 1, b: [2, 'x'] }), 'finite configs as JSON writes them');
  assert.equal(configText(undefined), '');
});
