// Header names that are also members of Object.prototype ("constructor", "__proto__"): the guarded header views read
// and write a plain object record, so such a name must be a header like any other, never the record's inherited
// members. get() of one the message does not carry is undefined; set('__proto__', ...) is refused at once, as node
// itself never carries a header of that name (it drops a client's), instead of changing the record's prototype and
// failing the request later outside the hook (400 request_not_forwardable, blamed on the client).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestGateway, type TestGateway } from 'portcullis/testing';

/** Reads the header x-name names from both views (JSON of the result), and sets it to x-set's JSON when given. */
const PLUGIN = `
export default {
  name: 'names',
  create() {
    const probe = (view, ctx, out) => {
      const name = ctx.request.headers['x-name'];
      view.set(out, JSON.stringify(view.get(name) ?? null));
      const value = ctx.request.headers['x-set'];
      if (value !== undefined) view.set(name, JSON.parse(value));
    };
    return {
      onUpstreamRequest(ctx) { probe(ctx.upstreamHeaders, ctx, 'x-seen-upstream'); },
      onResponse(ctx) { probe(ctx.responseHeaders, ctx, 'x-seen-response'); },
    };
  },
};
`;

describe('plugin header views: names that are members of Object.prototype', () => {
  let gateway: TestGateway;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'review-plugins-names-'));
    writeFileSync(join(dir, 'names.mjs'), PLUGIN);
    gateway = await createTestGateway({ plugins: [{ name: 'names', module: join(dir, 'names.mjs') }], middleware: { plugins: ['names'] } });
  });
  after(async () => {
    await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const name of ['constructor', '__proto__', 'valueOf', 'x-absent']) {
    test(`get('${name}') of a header the message does not carry is undefined, on both views`, async () => {
      const res = await gateway.inject({ url: '/', headers: { 'x-name': name } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-seen-response'], 'null');
      assert.equal(res.json().headers['x-seen-upstream'], 'null');
    });
  }

  for (const value of ['"a"', '["a","b"]']) {
    test(`set('__proto__', ${value}) throws in the hook: 500 plugin_failed naming the plugin, never a 400 for the client`, async () => {
      const res = await gateway.inject({ url: '/', headers: { 'x-name': '__proto__', 'x-set': value } });
      assert.equal(res.status, 500);
      assert.equal(res.json().code, 'plugin_failed');
      const id = res.headers['x-request-id'];
      assert.ok(gateway.logs.some((l) => l.msg === 'Plugin Failed' && l.request_id === id && l.plugin === 'names' && l.hook === 'onUpstreamRequest' && l.error === 'TypeError'));
    });
  }

  test("a plugin's own header named constructor is set and read back like any other", async () => {
    const res = await gateway.inject({ url: '/', headers: { 'x-name': 'constructor', 'x-set': '"c"' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.constructor, 'c');
    assert.equal(res.json().headers.constructor, 'c');
  });
});
