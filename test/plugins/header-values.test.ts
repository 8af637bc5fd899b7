// Several values for one header: a header whose syntax is one value (RFC 9110: not a `#` list) takes one value on
// ctx.upstreamHeaders as on ctx.responseHeaders, so a plugin hears of it when it sets two, rather than the backend
// keeping one of them (node keeps the first ETag, Authorization, Content-Type, ...) or refusing the request. A list
// header's values all reach the backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

interface Echoed {
  headers: Record<string, string | undefined>;
}

describe('header values a plugin sets', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins([{ name: 'setter', module: fixture('header-setter.mjs') }], ['setter']);
  });
  after(() => p.close());

  // cookie: review16 (two Cookie lines upstream; RFC 6265 §5.4 allows one).
  for (const name of ['etag', 'authorization', 'content-type', 'user-agent', 'range', 'if-modified-since', 'referer', 'origin', 'cookie']) {
    test(`upstreamHeaders.set('${name}', [a, b]) throws: it takes a single value`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': `${name}=a|b` } });
      const echoed = res.json<Echoed>().headers;
      assert.equal(echoed['x-set-error'], `TypeError: header ${name} takes a single value`);
      assert.notEqual(echoed[name], 'a', 'nothing was set');
    });
  }

  test("upstreamHeaders.set('etag', [a]): one value in an array is fine", async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': 'etag=a' } });
    assert.equal(res.json<Echoed>().headers.etag, 'a');
  });

  for (const name of ['if-none-match', 'if-match', 'accept', 'x-custom', 'content-language']) {
    test(`upstreamHeaders.set('${name}', [a, b]): a list header, every value reaches the backend`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': `${name}=a|b` } });
      const echoed = res.json<Echoed>().headers;
      assert.equal(echoed['x-set-error'], undefined);
      assert.equal(echoed[name], 'a, b');
    });
  }

  test("responseHeaders.set('etag', [a, b]) throws as before", async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-response': 'etag=a|b' } });
    assert.equal(res.headers['x-set-error'], 'TypeError: header etag takes a single value');
  });
});
