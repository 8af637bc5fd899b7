// ctx.respond(status, body, headers): `headers` is a plain object of name: value strings (README, "ctx.respond").
// Before, its own enumerable properties were read with Object.entries: a string sent one header per character
// ("0: a", "1: b", "2: c"), an array one per element ("0: x-a: 1"), and a Map, a fetch Headers or a number sent none,
// all with a 200 and no error for the plugin; { 'X-A': '1', 'x-a': '2' } sent only the last value. Now each is a
// TypeError at the call, so the request ends as the plugin's failure.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const BAD = [
  `'abc'`,
  `['x-a: 1']`,
  `new Map([['x-a', '1']])`,
  `new Headers({ 'x-a': '1' })`,
  `5`,
  `true`,
  `{ 'X-A': '1', 'x-a': '2' }`,
];

describe('ctx.respond(): headers that are not a plain object of names given once', () => {
  const gateway = expressionGatewayHooks('memory');

  for (const headers of BAD) {
    for (const [header, hook] of [['x-call', 'onRequest'], ['x-upstream', 'onUpstreamRequest']] as const) {
      test(`respond(200, 'x', ${headers}) in ${hook} throws a TypeError: 500 plugin_failed naming the plugin`, async () => {
        const res = await gateway.g.call({ [header]: `ctx.respond(200, 'x', ${headers})` });
        assertPluginFailed(gateway.g.gw, res, { hook });
        assert.equal(res.headers['0'], undefined);
      });
    }
  }
});
