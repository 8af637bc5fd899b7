// ctx is the plugin's to use as an object, and the chain's controls on it are not (found by the plugins review,
// 2026-12-07). The facade's stage, abandoned and pending were public fields: a plugin's own `ctx.pending = 'started'`
// made every request a 500 "internal" naming no plugin, and an object there a response whose Content-Length its body
// did not match (the client waited for bytes that never came). The header views' `target` handed out the raw record
// past every guard: an X-User-ID of the plugin's choosing reached the backend, and a Content-Length of 5 before a
// 225-byte body desynchronised the client's keep-alive connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
let p: PluginGateway;
before(async () => {
  p = await gatewayWithPlugins([{ name: 'ctx', module: fixture('ctx-internals.mjs') }], ['ctx']);
});
after(async () => {
  await p?.close();
  await client.close();
});

for (const [what, headers] of [
  ['a string', {}],
  ['an answer-shaped object', { 'x-pending-object': '1' }],
] as const) {
  test(`a plugin's own ctx.pending (${what}), stage and abandoned change nothing: the request is proxied whole`, async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers, timeoutMs: 5_000 });
    assert.equal(res.status, 200, res.text);
    const echoed = res.json<{ headers: Record<string, string | undefined> }>().headers;
    assert.equal(echoed['x-view-target'], 'undefined', 'the header view has no target to read');
    assert.equal(echoed['x-user-id'], undefined, 'no identity header of the plugin\'s making');
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text), 'Content-Length is the body\'s');
  });
}
