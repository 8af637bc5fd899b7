// The plugin contract through real sockets: hook order, ctx contents, respond(), headers both ways, owned headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { events, fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

describe('plugin hooks', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins(
      [
        { name: 'first', module: fixture('recorder.mjs'), config: { tag: 'A', channel: 'order', async: true } },
        { name: 'second', module: fixture('recorder.mjs'), config: { tag: 'B', channel: 'order' } },
        { name: 'actions', module: fixture('actions.mjs') },
        { name: 'unused', module: fixture('recorder.mjs'), config: { tag: 'U', channel: 'order' } },
      ],
      ['first', 'second', 'actions'],
    );
  });
  after(() => p.close());

  test('hooks run in middleware.plugins order: request, upstream request, response, then log', async () => {
    const log = events('order');
    log.length = 0;
    const res = await client.request(`${p.gw.url}/things/1?x=1`);
    assert.equal(res.status, 200);
    const echoed = res.json<{ headers: Record<string, string> }>().headers;
    assert.equal(echoed['x-trace'], 'A,B', 'upstream hooks ran in order and edited the upstream request');
    assert.equal(echoed['x-actions'], 'seen');
    assert.equal(res.headers['x-trace'], 'A,B');
    assert.equal(res.headers['x-state-a'], '/things/1', 'ctx.state carries from onRequest to onResponse');
    assert.equal(res.headers['x-upstream'], 'b1');
    // The log hooks run after the response has been sent.
    await waitUntil(() => log.includes('B:log:200'));
    assert.deepEqual(log, ['A:request', 'B:request', 'A:upstream', 'B:upstream', 'A:response:200', 'B:response:200', 'A:log:200', 'B:log:200']);
    assert.ok(!log.some((e) => e.startsWith('U:')), 'a declared plugin not in middleware.plugins never runs');
  });

  test('ctx.request is the client request, read-only; ctx knows the request id, client, route and service', async () => {
    const res = await client.request(`${p.gw.url}/a/b?tag=1&tag=2&q=x`, {
      method: 'POST',
      headers: { 'x-plugin-action': 'echo-request', 'content-type': 'text/plain', 'X-Mixed-Case': 'v' },
      body: 'hello',
    });
    assert.equal(res.status, 200);
    const body = res.json<Record<string, any>>();
    assert.equal(body.request.method, 'POST');
    assert.equal(body.request.path, '/a/b');
    assert.deepEqual(body.request.query, { tag: ['1', '2'], q: 'x' });
    // Names that are Object.prototype's members are parameters like any other.
    const odd = await client.request(`${p.gw.url}/a?__proto__=x&constructor=y&toString=z&toString=w`, { headers: { 'x-plugin-action': 'echo-request' } });
    const oddQuery = JSON.stringify(odd.json<Record<string, any>>().request.query);
    assert.deepEqual(JSON.parse(oddQuery), JSON.parse('{"__proto__":"x","constructor":"y","toString":["z","w"]}'));
    assert.equal(body.request.headers['x-mixed-case'], 'v');
    assert.equal(body.request.contentLength, 5);
    assert.equal(body.requestId, res.headers['x-request-id']);
    assert.equal(body.clientAddress, '127.0.0.1');
    assert.equal(body.route, 'proxy');
    assert.equal(body.service, 'default');
    assert.equal(body.user, null);
    assert.equal(body.frozen, true);
    assert.equal(p.backend.hits >= 0, true);
  });

  test('a request header may carry several values, even one a response takes once', async () => {
    const res = await client.request(`${p.gw.url}/multi`, { headers: { 'x-plugin-action': 'multi-upstream' } });
    assert.equal(res.status, 200);
    assert.equal(res.json<{ headers: Record<string, string> }>().headers['if-none-match'], '"a", "b"');
  });

  test('respond() ends the request with a JSON body, extra headers and the gateway headers; response hooks still run', async () => {
    const hits = p.backend.hits;
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'respond-json' } });
    assert.equal(res.status, 418);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(res.json(), { error: 'teapot', user: null });
    assert.equal(res.headers['x-teapot'], 'yes');
    assert.ok(res.headers['x-request-id']);
    assert.equal(res.headers['x-proxy-by'], 'Portcullis');
    assert.equal(res.headers['x-trace'], 'A,B', 'every plugin response hook saw the plugin-made response');
    assert.equal(res.headers['x-upstream'], 'none');
    assert.equal(p.backend.hits, hits, 'the backend never saw it');
  });

  test('respond() with a string sends text/plain; HEAD gets no body', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'respond-text' } });
    assert.equal(res.status, 403);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(res.text, 'go away');
    const head = await client.request(`${p.gw.url}/x`, { method: 'HEAD', headers: { 'x-plugin-action': 'respond-text' } });
    assert.equal(head.status, 403);
    assert.equal(head.text, '');
  });

  test('respond() from onUpstreamRequest answers instead of forwarding', async () => {
    const hits = p.backend.hits;
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'respond-upstream' } });
    assert.equal(res.status, 202);
    assert.deepEqual(res.json(), { from: 'upstream hook', upstream: 'b1' }, 'the upstream is chosen before this hook');
    assert.equal(p.backend.hits, hits);
  });

  for (const action of ['set-owned-upstream', 'delete-owned-upstream', 'set-identity', 'set-owned-response', 'respond-owned', 'respond-twice']) {
    test(`a gateway-owned header or misuse is refused: ${action} → 500`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': action } });
      assert.equal(res.status, 500);
      assert.equal(res.json().error, 'Internal Server Error');
      assert.equal(res.headers['x-proxy-by'], 'Portcullis', 'the gateway header was not replaced');
      const line = p.gw.logs.find((l) => l.msg === 'Plugin Failed' && l.request_id === res.headers['x-request-id']);
      assert.ok(line, 'a Plugin Failed line for this request');
      assert.equal(line.plugin, 'actions');
      assert.equal(line.error, 'TypeError');
    });
  }
});

async function waitUntil(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
