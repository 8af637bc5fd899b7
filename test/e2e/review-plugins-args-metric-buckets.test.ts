// api.metrics.histogram's buckets are finite numbers in increasing order, each once (README, "api.metrics"), else a
// TypeError when the metric is asked for. Before, prom-client took them as given: [5, 1] counted an observation of 3
// in le="1", [1, 1] wrote the series le="1" twice (Prometheus refuses such a scrape whole), Infinity wrote
// le="Infinity" beside le="+Inf", NaN le="NaN", and strings were compared as numbers; the plugin saw no error.
import { after, before, describe, test } from 'node:test';
import { assertPluginFailed, expressionGateway } from '../plugins/helpers.js';

const BAD = [`[5, 1]`, `[1, 1]`, `[1, Infinity]`, `[1, NaN]`, `['1', '2']`, `[0.1, -Infinity]`];

describe('api.metrics.histogram: buckets that are not increasing finite numbers', () => {
  let g: Exclude<Awaited<ReturnType<typeof expressionGateway>>, string>;
  before(async () => {
    g = (await expressionGateway('memory')) as typeof g;
  });
  after(async () => {
    await g.close();
  });

  let n = 0;
  for (const buckets of BAD) {
    test(`histogram({ buckets: ${buckets} }) throws a TypeError: 500 plugin_failed naming the plugin`, async () => {
      assertPluginFailed(g.gw, await g.call({ 'x-call': `(api.metrics.histogram({ name: 'args_buckets_${n++}', help: 'h', buckets: ${buckets} }), 1)` }));
    });
  }
});
