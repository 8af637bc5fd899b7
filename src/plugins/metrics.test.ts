// api.metrics refusals that keep /metrics a valid scrape (found by the plugins review, 2026-12-07).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from '../observability/prom-client.js';
import { PluginMetricCache } from './metrics.js';

test('label names Prometheus reserves are refused with a TypeError, and le on a histogram', () => {
  const metrics = new PluginMetricCache(new Registry()).handle();
  assert.throws(() => metrics.counter({ name: 'c', help: 'c', labelNames: ['__name__'] }), { name: 'TypeError', message: /reserved by Prometheus/ });
  assert.throws(() => metrics.gauge({ name: 'g', help: 'g', labelNames: ['__meta'] }), TypeError);
  assert.throws(() => metrics.histogram({ name: 'h', help: 'h', labelNames: ['le'] }), { name: 'TypeError', message: /le is written by the histogram/ });
  // le is an ordinary label on a counter.
  metrics.counter({ name: 'ok', help: 'ok', labelNames: ['le', 'route'] });
});

test("a metric named like a histogram's own series is refused, whichever comes first", async () => {
  const registry = new Registry();
  const cache = new PluginMetricCache(registry);
  const a = cache.handle({});
  const b = cache.handle({});
  a.histogram({ name: 'lat', help: 'lat' });
  for (const name of ['lat_count', 'lat_sum', 'lat_bucket']) {
    assert.throws(() => b.counter({ name, help: name }), { name: 'TypeError', message: /clashes with portcullis_plugin_lat/ });
  }
  b.counter({ name: 'wait_count', help: 'w' });
  assert.throws(() => a.histogram({ name: 'wait', help: 'w' }), { name: 'TypeError', message: /clashes with portcullis_plugin_wait_count/ });
  // Asked for again alike, the histogram is its own, not a clash.
  a.histogram({ name: 'lat', help: 'lat' });
  const text = await registry.metrics();
  assert.equal(text.match(/^portcullis_plugin_lat_count /gm)?.length, 1);
});
