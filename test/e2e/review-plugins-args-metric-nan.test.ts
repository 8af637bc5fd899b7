// api.metrics: a counter's or gauge's inc()/dec() refuses NaN with a TypeError (README, "api.metrics"). prom-client's
// own check (`value && !isFinite(value)`) lets NaN through: before, counter.inc(NaN) (a parseInt of a missing header)
// made the counter read NaN on /metrics for the rest of the process, its count lost, and the plugin saw no error;
// the same for a gauge's inc/dec and for the children labels() returns.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const COUNTER = `api.metrics.counter({ name: 'args_nan_total', help: 'h', labelNames: ['a'] })`;
const GAUGE = `api.metrics.gauge({ name: 'args_nan_gauge', help: 'h', labelNames: ['a'] })`;
const CALLS = [
  `${COUNTER}.inc({ a: 'x' }, NaN)`,
  `${COUNTER}.labels('x').inc(NaN)`,
  `${COUNTER}.labels({ a: 'x' }).inc(NaN)`,
  `${GAUGE}.inc({ a: 'x' }, NaN)`,
  `${GAUGE}.dec({ a: 'x' }, NaN)`,
  `${GAUGE}.labels('x').inc(NaN)`,
  `${GAUGE}.labels('x').dec(NaN)`,
  `api.metrics.counter({ name: 'args_nan_plain_total', help: 'h' }).inc(NaN)`,
  `api.metrics.gauge({ name: 'args_nan_plain', help: 'h' }).dec(NaN)`,
];

describe('api.metrics: inc/dec with NaN', () => {
  const gateway = expressionGatewayHooks('memory');
  before(async () => {
    const seeded = await gateway.g.call({ 'x-call': `(${COUNTER}.inc({ a: 'x' }, 2), ${GAUGE}.set({ a: 'x' }, 5), 1)` });
    assert.equal(seeded.status, 200, seeded.text);
  });

  for (const call of CALLS) {
    test(`${call} throws a TypeError: 500 plugin_failed naming the plugin`, async () => {
      assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': call }));
    });
  }

  test('the counts survive the refused calls (the counter is still 2, the gauge 5), never NaN', async () => {
    for (const call of CALLS) await gateway.g.call({ 'x-call': call });
    const res = await gateway.g.call({ 'x-call': `Promise.all([${COUNTER}.get(), ${GAUGE}.get()]).then((m) => m.map((x) => String(x.values[0].value)))` });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json().result, ['2', '5']);
  });
});
