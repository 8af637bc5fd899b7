// api.store.take(key, { requests_per_minute, burst_size }) refuses a limit it cannot honour with a TypeError at the
// call, on the memory store and on Redis alike (README, "api.store"). Before, Infinity (or 1e308) per minute was no
// limit at all; an infinite burst, or one past 2^53, answered `remaining` Infinity from memory and
// -9223372036854775808 from Redis; numeric strings refused every take in memory and counted on Redis; a refill too
// slow for Redis's expiry (1e-300 per minute) was a store outage on Redis and a retryAfterMs of 6e304 in memory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks, type StoreKind } from '../plugins/helpers.js';

const BAD_LIMITS = [
  '{ requests_per_minute: Infinity, burst_size: 2 }',
  '{ requests_per_minute: 1e308 * 10, burst_size: 2 }',
  "{ requests_per_minute: '60', burst_size: '2' }",
  "{ requests_per_minute: '60', burst_size: 2 }",
  '{ requests_per_minute: 60, burst_size: Infinity }',
  '{ requests_per_minute: 60, burst_size: 1.5 }',
  '{ requests_per_minute: 60, burst_size: 1e300 }',
  '{ requests_per_minute: 60, burst_size: 2 ** 53 }',
  '{ requests_per_minute: 1e-300, burst_size: 1 }',
];

const takes = (key: string, limit: string, n = 3): string =>
  `(async () => { const r = []; for (let i = 0; i < ${n}; i++) r.push(await api.store.take(${key}, ${limit})); return r; })()`;

for (const store of ['memory', 'redis'] as StoreKind[]) {
  describe(`api.store.take's limit (${store} store)`, () => {
    const gateway = expressionGatewayHooks(store);

    for (const limit of BAD_LIMITS) {
      test(`take(key, ${limit}) throws a TypeError at the call: 500 plugin_failed, Plugin Failed naming the plugin`, async (t) => {
        if (gateway.skip) return t.skip(gateway.skip);
        const res = await gateway.g.call({ 'x-call': takes(`'bad'`, limit) });
        assertPluginFailed(gateway.g.gw, res);
      });
    }

    test('the limit is read once: a getter answering 60 to the check and Infinity after is a bucket of 60 per minute', async (t) => {
      if (gateway.skip) return t.skip(gateway.skip);
      const res = await gateway.g.call({ 'x-call': takes(`'getter'`, '{ n: 0, get requests_per_minute() { return this.n++ === 0 ? 60 : Infinity; }, burst_size: 2 }') });
      assert.equal(res.status, 200, res.text);
      const result = res.json<{ result: Array<{ allowed: boolean }> }>().result;
      assert.deepEqual(result.map((r) => r.allowed), [true, true, false]);
    });

    test("the rule's edges: a fractional rate counts, a fractional burst throws; 2^53 - 1 counts, 2^53 throws; a 100-year refill counts, a longer one throws", async (t) => {
      if (gateway.skip) return t.skip(gateway.skip);
      const century = 100 * 365 * 24 * 60;
      const res = await gateway.g.call({
        'x-call': `(async () => {
          const outcome = (p) => p.then((r) => r, (err) => err.constructor.name);
          return {
            rate: [await api.store.take('slow', { requests_per_minute: 0.5, burst_size: 1 }), await api.store.take('slow', { requests_per_minute: 0.5, burst_size: 1 })],
            fraction: await outcome(api.store.take('fraction', { requests_per_minute: 0.5, burst_size: 1.5 })),
            big: await outcome(api.store.take('big', { requests_per_minute: 1e12, burst_size: 2 ** 53 - 1 })),
            bigger: await outcome(api.store.take('bigger', { requests_per_minute: 1e12, burst_size: 2 ** 53 })),
            century: await outcome(api.store.take('century', { requests_per_minute: 1 / ${century}, burst_size: 1 })),
            longer: await outcome(api.store.take('longer', { requests_per_minute: 1 / ${century}, burst_size: 2 })),
          };
        })()`.replace(/\s*\n\s*/g, ' '),
      });
      assert.equal(res.status, 200, res.text);
      const { result } = res.json<{ result: Record<string, unknown> }>();
      const [first, second] = result.rate as Array<{ allowed: boolean; remaining: number; retryAfterMs: number }>;
      assert.deepEqual(first, { allowed: true, remaining: 0, retryAfterMs: 0 });
      assert.equal(second!.allowed, false);
      assert.ok(second!.retryAfterMs > 119_000 && second!.retryAfterMs <= 120_000, String(second!.retryAfterMs));
      assert.equal(result.fraction, 'TypeError');
      assert.deepEqual(result.big, { allowed: true, remaining: 2 ** 53 - 2, retryAfterMs: 0 });
      assert.equal(result.bigger, 'TypeError');
      assert.deepEqual(result.century, { allowed: true, remaining: 0, retryAfterMs: 0 });
      assert.equal(result.longer, 'TypeError');
    });
  });
}
