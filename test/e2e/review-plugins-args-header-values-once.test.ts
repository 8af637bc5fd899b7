// ctx.upstreamHeaders.set / ctx.responseHeaders.set check the values they store (README, "Headers"): an array is
// read once. Before, the plugin's array was checked and then copied, two reads: a Proxy answering a clean value to
// the check and one with CR LF to the copy got past the check, and the head was refused when the gateway wrote it,
// outside the hook: upstream, a 400 request_not_forwardable blamed on the client. Now the value checked is the value
// stored and sent.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expressionGatewayHooks } from '../plugins/helpers.js';

const TWO_FACED = `new Proxy(['ok'], { get(target, prop, receiver) { if (prop === '0') { target.reads = (target.reads ?? 0) + 1; return target.reads === 1 ? 'ok' : 'bad\\r\\nx-injected: 1'; } return Reflect.get(target, prop, receiver); } })`;

describe('plugin header views: an array value is read once', () => {
  const gateway = expressionGatewayHooks('memory');

  for (const [view, header, hook] of [
    ['upstreamHeaders', 'x-upstream', 'onUpstreamRequest'],
    ['responseHeaders', 'x-response', 'onResponse'],
  ] as const) {
    test(`ctx.${view}.set('x-a', <an array whose second read differs>) in ${hook} sends the value it checked`, async () => {
      const res = await gateway.g.call({ [header]: `ctx.${view}.set('x-a', ${TWO_FACED})` });
      assert.equal(res.status, 200, res.text);
      const sent = view === 'upstreamHeaders' ? res.json<{ headers: Record<string, string> }>().headers : res.headers;
      assert.equal(sent['x-a'], 'ok');
      assert.equal(sent['x-injected'], undefined);
    });
  }
});
