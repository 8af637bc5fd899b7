// A plugin metric keeps its type, labels and buckets for the life of the process. A reload whose plugin asks for an
// existing metric with other labels is refused (MetricConflictError) and the running config keeps serving; before,
// the reload was applied, the plugin got the old metric back, and every increment with its new labels threw: a 500 on
// every request until a restart. Two instances that ask alike share the metric; unlike, the second fails at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { fixture } from './helpers.js';

function config(backend: TestBackend, instances: Array<{ name: string; labels: string[]; metric?: string }>): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: instances.map(({ name, labels, metric }) => ({ name, module: fixture('labelled-counter.mjs'), config: { metric: metric ?? 'seen_total', labels } })),
    middleware: { plugins: instances.map((i) => i.name) },
  };
}

test('a reload that asks for a plugin metric with new labels is refused, naming MetricConflictError; requests go on being served', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess(config(backend, [{ name: 'c', labels: ['route'] }]));
  try {
    assert.equal((await fetch(`${gw.url}/x`)).status, 200);
    await assert.rejects(gw.gateway.reload(parseConfigObject(config(backend, [{ name: 'c', labels: ['route', 'tier'] }]))), /MetricConflictError/);
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${gw.url}/x`)).status, 200, 'the running config keeps serving');
    const metrics = await (await fetch(`${gw.adminUrl!}/metrics`)).text();
    assert.match(metrics, /portcullis_plugin_seen_total\{route="x"\} 4/);
  } finally {
    await gw.close();
    await backend.stop();
  }
});

test('two instances asking for one metric alike share it; with other labels, start-up fails naming MetricConflictError', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess(config(backend, [{ name: 'a', labels: ['route'] }, { name: 'b', labels: ['route'] }]));
  try {
    assert.equal((await fetch(`${gw.url}/x`)).status, 200);
    const metrics = await (await fetch(`${gw.adminUrl!}/metrics`)).text();
    assert.match(metrics, /portcullis_plugin_seen_total\{route="x"\} 2/, 'one metric, counted by both');
  } finally {
    await gw.close();
  }
  try {
    await assert.rejects(startInProcess(config(backend, [{ name: 'a', labels: ['route'] }, { name: 'b', labels: ['tier'] }])), /MetricConflictError/);
  } finally {
    await backend.stop();
  }
});

test('a refused reload leaves no metric behind: one a new instance registered before another failed is gone from /metrics', async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess(config(backend, [{ name: 'c', labels: ['route'] }]));
  try {
    // "n" registers fresh_total, then "c" asks for seen_total with other labels: the reload fails after n's create().
    const refused = config(backend, [{ name: 'n', labels: ['route'], metric: 'fresh_total' }, { name: 'c', labels: ['tier'] }]);
    await assert.rejects(gw.gateway.reload(parseConfigObject(refused)), /MetricConflictError/);
    const metrics = await (await fetch(`${gw.adminUrl!}/metrics`)).text();
    assert.doesNotMatch(metrics, /portcullis_plugin_fresh_total/, 'the refused reload changed /metrics');
    // And the name is free again for a reload that does happen.
    await gw.gateway.reload(parseConfigObject(config(backend, [{ name: 'n', labels: ['tier'], metric: 'fresh_total' }, { name: 'c', labels: ['route'] }])));
    assert.equal((await fetch(`${gw.url}/x`)).status, 200);
    assert.match(await (await fetch(`${gw.adminUrl!}/metrics`)).text(), /portcullis_plugin_fresh_total\{tier="x"\} 1/);
  } finally {
    await gw.close();
    await backend.stop();
  }
});
