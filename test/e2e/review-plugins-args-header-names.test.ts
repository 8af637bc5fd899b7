// ctx.upstreamHeaders / ctx.responseHeaders take header names as strings (README, "Headers"), as node's
// setHeader/getHeader do. Before, a name was converted with String(): set(undefined, v) sent a header named
// "undefined" upstream or to the client (set(null, v) "null", set(42, v) "42", an object its toString()),
// delete(undefined) removed a header named "undefined", get(undefined) read it, and the plugin saw no error.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const NAMES = ['undefined', 'null', '42', `{ toString() { return 'x-object'; } }`];

describe('plugin header views: a name that is not a string', () => {
  const gateway = expressionGatewayHooks('memory');

  for (const name of NAMES) {
    for (const [view, header, hook] of [
      ['upstreamHeaders', 'x-upstream', 'onUpstreamRequest'],
      ['responseHeaders', 'x-response', 'onResponse'],
    ] as const) {
      for (const call of [`set(${name}, 'v')`, `delete(${name})`, `get(${name})`]) {
        test(`ctx.${view}.${call} throws a TypeError in ${hook}: 500 plugin_failed naming the plugin, no such header sent`, async () => {
          const res = await gateway.g.call({ [header]: `ctx.${view}.${call}`, undefined: 'client-sent', 'x-object': 'client-sent' });
          assertPluginFailed(gateway.g.gw, res, { hook });
          for (const sent of ['undefined', 'null', '42', 'x-object']) assert.notEqual(res.headers[sent], 'v');
        });
      }
    }
  }
});
