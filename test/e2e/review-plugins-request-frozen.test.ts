// ctx.request is frozen (README, "The contract") and shared by the plugins of one request: a repeated query
// parameter's array, and a request header node hands over as an array (Set-Cookie), are frozen with it, so one
// plugin cannot change what the next one reads, nor (for the header, which was the request's own array) what goes
// upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestGateway, type TestGateway } from 'portcullis/testing';

/** Tries to push onto the arrays of ctx.request; reports whether it could, and what it saw (via its header). */
const plugin = (name: string): string => `
export default {
  name: '${name}',
  create() {
    return {
      onRequest(ctx) {
        const tried = [];
        for (const list of [ctx.request.query.a, ctx.request.headers['set-cookie']]) {
          try { list.push('${name}'); tried.push('pushed'); } catch (err) { tried.push(err.constructor.name); }
        }
        ctx.state.set('seen', JSON.stringify({ tried, a: ctx.request.query.a, cookie: ctx.request.headers['set-cookie'] }));
      },
      onResponse(ctx) { ctx.responseHeaders.set('x-${name}', ctx.state.get('seen')); },
    };
  },
};
`;

describe('ctx.request: its arrays are frozen too', () => {
  let gateway: TestGateway;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'review-plugins-frozen-'));
    writeFileSync(join(dir, 'first.mjs'), plugin('first'));
    writeFileSync(join(dir, 'second.mjs'), plugin('second'));
    gateway = await createTestGateway({
      plugins: [
        { name: 'first', module: join(dir, 'first.mjs') },
        { name: 'second', module: join(dir, 'second.mjs') },
      ],
      middleware: { plugins: ['first', 'second'] },
    });
  });
  after(async () => {
    await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a repeated query parameter and a Set-Cookie request header: a plugin's push throws, the next plugin and the upstream see the client's values", async () => {
    const res = await gateway.inject({ url: '/?a=1&a=2', headers: { 'set-cookie': ['s=1', 't=2'] } });
    assert.equal(res.status, 200);
    const client = { a: ['1', '2'], cookie: ['s=1', 't=2'] };
    for (const name of ['x-first', 'x-second']) {
      assert.deepEqual(JSON.parse(String(res.headers[name])), { tried: ['TypeError', 'TypeError'], ...client }, name);
    }
    assert.deepEqual(res.json().headers['set-cookie'], client.cookie, "the upstream got the client's cookies only");
  });
});
