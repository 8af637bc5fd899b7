// api.store keys and values are well-formed Unicode (README, "api.store"). Redis takes them as UTF-8, where each
// unpaired UTF-16 surrogate becomes U+FFFD: before, "a\uD800" and "a\uDBFF" were one key on Redis (one bucket, one
// counter, one value: a store key collision between a plugin's own clients) and two in memory, and a value holding
// one came back from Redis as another string. Now both stores refuse such a key or value with a TypeError at the call.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks, type StoreKind } from '../plugins/helpers.js';

const CALLS = [
  `api.store.get('u:\\uD800')`,
  `api.store.set('u:\\uDBFF', 'x')`,
  `api.store.incr('u:\\uDC00x', 60000)`,
  `api.store.take('u:\\uD83D', { requests_per_minute: 60, burst_size: 1 })`,
  `api.store.set('value', 'half an emoji: \\uD83D')`,
];

for (const store of ['memory', 'redis'] as StoreKind[]) {
  describe(`api.store: unpaired surrogates (${store} store)`, () => {
    const gateway = expressionGatewayHooks(store);

    for (const call of CALLS) {
      test(`${call} throws a TypeError at the call: 500 plugin_failed, Plugin Failed naming the plugin`, async (t) => {
        if (gateway.skip) return t.skip(gateway.skip);
        assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': call }));
      });
    }

    test('a surrogate pair (an emoji) and U+FFFD are characters like any other (distinct keys, values kept as given); half a pair throws', async (t) => {
      if (gateway.skip) return t.skip(gateway.skip);
      const res = await gateway.g.call({
        'x-call': `(async () => {
          const outcome = (p) => p.then((r) => r ?? null, (err) => err.constructor.name);
          await api.store.set('e:\\uD83D\\uDE00', 'smile \\uD83D\\uDE00');
          await api.store.set('e:\\uFFFD', 'replacement');
          return [await api.store.get('e:\\uD83D\\uDE00'), await api.store.get('e:\\uFFFD'), await api.store.get('e:\\uD83D\\uDE01'), await outcome(api.store.get('e:\\uD83D'))];
        })()`.replace(/\s*\n\s*/g, ' '),
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json().result, ['smile \u{1F600}', 'replacement', null, 'TypeError']);
    });
  });
}
