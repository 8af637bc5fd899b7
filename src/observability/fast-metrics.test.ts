// Fast collectors render the same /metrics text (and JSON) as prom-client's own Counter and Histogram fed the same data.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { FastCounter, FastHistogram, registerFast } from './fast-metrics.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A prom-client registry and ours, holding the same metric definitions side by side. */
function pair(contentType: RegistryContentType = Registry.PROMETHEUS_CONTENT_TYPE) {
  const reference = new Registry<RegistryContentType>();
  const ours = new Registry<RegistryContentType>();
  reference.setContentType(contentType);
  ours.setContentType(contentType);
  const refRequests = new Counter({ name: 'x_requests_total', help: 'Requests "by" route\\method', labelNames: ['route', 'method', 'status'] as const, registers: [reference] });
  const refDuration = new Histogram({ name: 'x_duration_seconds', help: 'Duration', labelNames: ['route'] as const, buckets: BUCKETS, registers: [reference] });
  const refPlain = new Histogram({ name: 'x_plain_seconds', help: 'No labels', registers: [reference] });
  const refTotal = new Counter({ name: 'x_total', help: 'No labels', registers: [reference] });
  const requests = new FastCounter({ name: 'x_requests_total', help: 'Requests "by" route\\method', labelNames: ['route', 'method', 'status'] });
  const duration = new FastHistogram({ name: 'x_duration_seconds', help: 'Duration', labelNames: ['route'], buckets: BUCKETS });
  const plain = new FastHistogram({ name: 'x_plain_seconds', help: 'No labels' });
  const total = new FastCounter({ name: 'x_total', help: 'No labels' });
  for (const m of [requests, duration, plain, total]) registerFast(ours, m);
  return {
    reference,
    ours,
    inc(route: string, method: string, status: string, by = 1) {
      refRequests.labels(route, method, status).inc(by);
      // Different keys for the same label set must land on one series.
      const key = `${route}|${method}|${status}|${String(Math.random())}`;
      (requests.at(key) ?? requests.series(key, [route, method, status])).inc(by);
    },
    observe(route: string, seconds: number) {
      refDuration.labels(route).observe(seconds);
      (duration.at(route) ?? duration.series(route, [route])).observe(seconds);
      refPlain.observe(seconds);
      (plain.at('') ?? plain.series('', [])).observe(seconds);
      refTotal.inc();
      (total.at('') ?? total.series('', [])).inc();
    },
  };
}

/** Observations that hit every edge: exactly on bounds, between, above the last bound, zero, float sums. */
function feed(p: ReturnType<typeof pair>): void {
  const values = [0, 0.001, 0.0011, 0.0025, 0.1 + 0.2, 1, 59.99, 60, 61, 1e-9, 1234.5, 0.0001 * 3];
  values.forEach((v, i) => p.observe(i % 3 === 0 ? 'proxy' : i % 3 === 1 ? 'auth' : 'he"alth\\\n', v));
  p.inc('proxy', 'GET', '200');
  p.inc('auth', 'POST', '401');
  p.inc('proxy', 'GET', '200');
  p.inc('proxy', 'OTHER', '0', 0);
  p.inc('quo"te\\back\nline', 'GET', '502', 2.5);
  for (let i = 0; i < 1000; i++) p.inc('proxy', 'GET', '200');
}

describe('fast metrics exposition', () => {
  test('empty collectors print what empty prom-client metrics print', async () => {
    const p = pair();
    assert.equal(await p.ours.metrics(), await p.reference.metrics());
  });

  test('same observations give byte-identical Prometheus text', async () => {
    const p = pair();
    feed(p);
    const text = await p.ours.metrics();
    assert.equal(text, await p.reference.metrics());
    // Sanity: the comparison is over real content, not two empty strings.
    assert.match(text, /x_duration_seconds_bucket\{le="\+Inf",route="proxy"\} 4\n/);
    assert.match(text, /x_requests_total\{route="proxy",method="GET",status="200"\} 1002\n/);
  });

  test('same text in OpenMetrics mode and with registry default labels', async () => {
    const open = pair(Registry.OPENMETRICS_CONTENT_TYPE);
    feed(open);
    assert.equal(await open.ours.metrics(), await open.reference.metrics());
    const labelled = pair();
    labelled.reference.setDefaultLabels({ instance: 'a' });
    labelled.ours.setDefaultLabels({ instance: 'a' });
    feed(labelled);
    assert.equal(await labelled.ours.metrics(), await labelled.reference.metrics());
  });

  test('same JSON from getMetricsAsJSON, but for the exemplar slots (exemplars are not supported)', async () => {
    const p = pair();
    feed(p);
    const reference = await p.reference.getMetricsAsJSON();
    for (const metric of reference) for (const value of metric.values) delete (value as { exemplar?: unknown }).exemplar;
    assert.deepEqual(await p.ours.getMetricsAsJSON(), reference);
  });

  test('resetMetrics drops series on both; lookups by key then miss and recreate', async () => {
    const p = pair();
    feed(p);
    p.reference.resetMetrics();
    p.ours.resetMetrics();
    assert.equal(await p.ours.metrics(), await p.reference.metrics());
    feed(p);
    assert.equal(await p.ours.metrics(), await p.reference.metrics());
  });

  test("retainWhere drops what prom-client's remove() drops, keeps the rest as it was; a dropped label set comes back at zero", async () => {
    const p = pair();
    feed(p);
    const gone = ['auth', 'quo"te\\back\nline'];
    for (const metric of p.reference.getMetricsAsArray() as unknown as { name: string; remove(labels: object): void }[]) {
      for (const route of gone) {
        if (metric.name === 'x_duration_seconds') metric.remove({ route });
        if (metric.name === 'x_requests_total') for (const [method, status] of [['POST', '401'], ['GET', '502']]) metric.remove({ route, method, status });
      }
    }
    for (const name of ['x_requests_total', 'x_duration_seconds']) {
      const ours = p.ours.getSingleMetric(name) as unknown as FastCounter | FastHistogram;
      ours.retainWhere((labels) => !gone.includes(labels.route as string));
    }
    const text = await p.ours.metrics();
    assert.equal(text, await p.reference.metrics());
    assert.doesNotMatch(text, /route="auth"/);
    assert.match(text, /x_requests_total\{route="proxy",method="GET",status="200"\} 1002\n/, 'the kept series untouched');
    // The keys of dropped series miss, so the next observation starts a new series at zero (appended, as prom-client).
    feed(p);
    assert.equal(await p.ours.metrics(), await p.reference.metrics());
    assert.match(await p.ours.metrics(), /x_requests_total\{route="auth",method="POST",status="401"\} 1\n/);
  });
});

describe('fast metrics checks', () => {
  test('bad definitions and label counts are refused', () => {
    assert.throws(() => new FastCounter({ name: 'bad-name', help: 'h' }), RangeError);
    assert.throws(() => new FastCounter({ name: 'ok', help: 'h', labelNames: ['1x'] }), RangeError);
    assert.throws(() => new FastHistogram({ name: 'ok', help: 'h', labelNames: ['le'] }), RangeError);
    assert.throws(() => new FastHistogram({ name: 'ok', help: 'h', buckets: [1, 0.5] }), RangeError);
    const c = new FastCounter({ name: 'ok', help: 'h', labelNames: ['a'] });
    assert.throws(() => c.series(1, ['x', 'y']), RangeError);
  });

  test('a counter never goes down and ignores non-finite amounts; a histogram ignores non-finite values', () => {
    const c = new FastCounter({ name: 'c', help: 'h' });
    const s = c.at('') ?? assert.fail('label-less series exists from the start');
    s.inc(-1);
    s.inc(Number.NaN);
    s.inc(Infinity);
    s.inc();
    assert.equal(c.get().values[0]?.value, 1);
    const h = new FastHistogram({ name: 'h', help: 'h' });
    const hs = h.at('') ?? assert.fail('label-less series exists from the start');
    hs.observe(Number.NaN);
    hs.observe(0.2);
    assert.equal(hs.count, 1);
    assert.equal(hs.sum, 0.2);
  });
});
