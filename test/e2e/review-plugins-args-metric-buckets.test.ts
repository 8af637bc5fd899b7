// api.metrics.histogram's buckets are finite numbers in increasing order, each once (README, "api.metrics"), else a
// TypeError when the metric is asked for. Before, prom-client took them as given: [5, 1] counted an observation of 3
// in le="1", [1, 1] wrote the series le="1" twice (Prometheus refuses such a scrape whole), Infinity wrote
// le="Infinity" beside le="+Inf", NaN le="NaN", and strings were compared as numbers; the plugin saw no error.
import { describe, test } from 'node:test';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const BAD = [`[5, 1]`, `[1, 1]`, `[1, Infinity]`, `[1, NaN]`, `['1', '2']`, `[0.1, -Infinity]`];

describe('api.metrics.histogram: buckets that are not increasing finite numbers', () => {
  const gateway = expressionGatewayHooks('memory');

  let n = 0;
  for (const buckets of BAD) {
    test(`histogram({ buckets: ${buckets} }) throws a TypeError: 500 plugin_failed naming the plugin`, async () => {
      assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': `(api.metrics.histogram({ name: 'args_buckets_${n++}', help: 'h', buckets: ${buckets} }), 1)` }));
    });
  }
});
