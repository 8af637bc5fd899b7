// api.metrics.counter / gauge / histogram take labelNames as an array of label names (README, "api.metrics"), and
// refuse anything else with a TypeError when the metric is asked for. Before, labelNames was spread as it came:
// 'outcome' (a string for an array) registered a metric labelled o, u, t, c, m, e without a word, and every
// inc({ outcome }) afterwards failed (a 500 on each request, far from the mistake); a number was taken as its text;
// a repeated name or one prom-client refuses threw a plain Error.
import { describe, test } from 'node:test';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const BAD = [`'outcome'`, `[1]`, `['outcome', 'outcome']`, `['bad-label']`];

describe('api.metrics: labelNames that are not an array of label names', () => {
  const gateway = expressionGatewayHooks('memory');

  let n = 0;
  for (const kind of ['counter', 'gauge', 'histogram']) {
    for (const labels of BAD) {
      test(`api.metrics.${kind}({ labelNames: ${labels} }) throws a TypeError: 500 plugin_failed naming the plugin`, async () => {
        const name = `args_labels_${kind}_${n++}`;
        assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': `(api.metrics.${kind}({ name: '${name}', help: 'h', labelNames: ${labels} }), 1)` }));
      });
    }
  }
});
