// api.store values are at most 1 MiB of UTF-8 (README, "api.store"), on both stores alike. Before, any size was kept:
// in memory up to 100 000 values with no bound on their bytes (a plugin that stored what clients sent could be made to
// hold gigabytes), on Redis up to 512 MB a value. Now a larger value is a TypeError at the call (500 plugin_failed),
// counted in UTF-8 bytes as Redis keeps it, and the memory store also bounds the bytes all values take (64 MiB).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks, type StoreKind } from '../plugins/helpers.js';

const MIB = 1024 * 1024;

for (const store of ['memory', 'redis'] as StoreKind[]) {
  describe(`api.store: the size of a value (${store} store)`, () => {
    const gateway = expressionGatewayHooks(store);

    for (const [what, value] of [
      ['1 MiB + 1 ASCII characters', `'x'.repeat(${MIB + 1})`],
      ['524 289 two-byte characters (1 MiB + 2 bytes of UTF-8, half as many code units)', `'\\u00e9'.repeat(${MIB / 2 + 1})`],
      ['an emoji repeated past 1 MiB of UTF-8 (4 bytes, 2 code units each)', `'\\uD83D\\uDE00'.repeat(${MIB / 4 + 1})`],
      ['64 MiB', `'x'.repeat(${64 * MIB})`],
    ]) {
      test(`set() of ${what} throws a TypeError at the call: 500 plugin_failed`, async (t) => {
        if (gateway.skip) return t.skip(gateway.skip);
        assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': `api.store.set('big', ${value})` }));
      });
    }

    test('exactly 1 MiB of UTF-8 is kept and read back whole', async (t) => {
      if (gateway.skip) return t.skip(gateway.skip);
      const res = await gateway.g.call({
        'x-call': `(async () => {
          await api.store.set('ascii', 'x'.repeat(${MIB}));
          await api.store.set('accents', '\\u00e9'.repeat(${MIB / 2}));
          const [a, b] = [await api.store.get('ascii'), await api.store.get('accents')];
          return [a.length, a === 'x'.repeat(${MIB}), b.length, b === '\\u00e9'.repeat(${MIB / 2})];
        })()`.replace(/\s*\n\s*/g, ' '),
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json().result, [MIB, true, MIB / 2, true]);
    });
  });
}
