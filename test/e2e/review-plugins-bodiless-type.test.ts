// respond(204 | 304, body): the body is never sent (README), and neither is the Content-Type the gateway would have
// derived from it. A 304 updates the headers a cache stored (RFC 9111 §4.3.4), so a "text/plain" describing a body
// that was dropped could replace the stored representation's type; RFC 9110 §15.4.5 asks a 304 not to carry such
// metadata. A Content-Type the plugin passes itself is still sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestGateway, type TestGateway } from 'portcullis/testing';

/** Answers with x-status and the body x-body (JSON), passing x-type as Content-Type when given. */
const PLUGIN = `
export default {
  name: 'bodiless',
  create() {
    return {
      onRequest(ctx) {
        const h = ctx.request.headers;
        ctx.respond(Number(h['x-status']), JSON.parse(h['x-body']), h['x-type'] === undefined ? undefined : { 'content-type': h['x-type'] });
      },
    };
  },
};
`;

describe('respond() with a status that has no body', () => {
  let gateway: TestGateway;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'review-plugins-bodiless-'));
    writeFileSync(join(dir, 'bodiless.mjs'), PLUGIN);
    gateway = await createTestGateway({ plugins: [{ name: 'bodiless', module: join(dir, 'bodiless.mjs') }], middleware: { plugins: ['bodiless'] } });
  });
  after(async () => {
    await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const status of [204, 304]) {
    for (const body of ['"not modified"', '{"a":1}', '[1]']) {
      test(`respond(${status}, ${body}): no body and no Content-Type`, async () => {
        const res = await gateway.inject({ url: '/', headers: { 'x-status': String(status), 'x-body': body } });
        assert.equal(res.status, status);
        assert.equal(res.body, '');
        assert.equal(res.headers['content-type'], undefined);
      });
    }
    test(`respond(${status}, body, { 'content-type': ... }): the plugin's own Content-Type is sent`, async () => {
      const res = await gateway.inject({ url: '/', headers: { 'x-status': String(status), 'x-body': '"x"', 'x-type': 'application/json' } });
      assert.equal(res.status, status);
      assert.equal(res.headers['content-type'], 'application/json');
    });
  }

  test('respond(200, text) keeps its text/plain (the control)', async () => {
    const res = await gateway.inject({ url: '/', headers: { 'x-status': '200', 'x-body': '"hi"' } });
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.body, 'hi');
  });
});
