// The admin /metrics survives one metric that cannot be collected. A plugin may register prom-client metrics of its
// own on api.metrics.registry (README, "api.metrics"); before, one whose collection threw or rejected made every
// scrape a 500 (every gateway metric lost with it, Prometheus marking the gateway down), and one whose collection
// never settled held every scrape open for good, one more hung request per scrape. Now each metric is collected on its
// own, bounded: a failed or late one is left out of that scrape and logged (`Metric Collect Failed`, with its name and
// the cause's class), and the rest is served.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expressionGatewayHooks } from '../plugins/helpers.js';

/** A metric object as prom-client's registry takes it, whose collection is `get`. */
const register = (name: string, get: string): string =>
  `(api.metrics.registry.registerMetric({ name: '${name}', help: 'h', type: 'gauge', aggregator: 'sum', get: ${get}, reset() {} }), 1)`;

const BROKEN = [
  { name: 'portcullis_plugin_r2_throws', get: `() => { throw new Error('collect SECRET-1') }`, cause: 'Error' },
  { name: 'portcullis_plugin_r2_rejects', get: `async () => { throw new RangeError('collect SECRET-2') }`, cause: 'RangeError' },
  { name: 'portcullis_plugin_r2_hangs', get: `() => new Promise(() => {})`, cause: 'timeout' },
];

describe('a plugin metric that cannot be collected', () => {
  const gateway = expressionGatewayHooks('memory');

  test('is left out of /metrics and logged; every other metric is served, within the bound', async () => {
    const { gw } = gateway.g;
    const ok = await gateway.g.call({ 'x-call': register('portcullis_plugin_r2_fine', `async () => ({ name: 'portcullis_plugin_r2_fine', help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value: 7, labels: {} }] })`) });
    assert.equal(ok.status, 200, ok.text);
    for (const m of BROKEN) {
      const res = await gateway.g.call({ 'x-call': register(m.name, m.get) });
      assert.equal(res.status, 200, res.text);
    }
    const started = Date.now();
    const res = await fetch(`${gw.adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    assert.equal(res.status, 200, text.slice(0, 300));
    assert.ok(Date.now() - started < 5_000, `scrape took ${Date.now() - started} ms`);
    assert.match(text, /^portcullis_requests_total\{/m, 'the gateway metrics are there');
    assert.match(text, /^portcullis_plugin_r2_fine 7$/m, "a plugin's working metric is there");
    assert.doesNotMatch(text, /r2_throws|r2_rejects|r2_hangs|SECRET/);
    for (const m of BROKEN) {
      const lines = gw.logs.filter((l) => l.msg === 'Metric Collect Failed' && l.metric === m.name);
      assert.equal(lines.length, 1, `${m.name}: ${JSON.stringify(lines)}`);
      assert.match(String(lines[0]!.cause), new RegExp(m.cause, 'i'));
    }
    assert.doesNotMatch(JSON.stringify(gw.logs), /SECRET/, 'no collect error message is logged');
  });
});
