// respond(205, body): 205 Reset Content has no content (RFC 9110 §15.3.6: a server MUST NOT generate it, and says
// so with Content-Length: 0). What was wrong: only 204 and 304 were answered without their body, so a 205 went out
// over HTTP/1.1 with the body and its Content-Length, and over HTTP/2 node ends a 205's stream at the head (as for a
// 204) while the gateway still wrote the body: the client's stream was reset with PROTOCOL_ERROR, no answer at all.
// What is right now: a 205 goes out with Content-Length: 0, no body and no Content-Type derived from the body, over
// both protocols.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** Answers 205 with the text "reset" (x-json: with an object). */
const PLUGIN = `
export default {
  name: 'reset',
  create() {
    return {
      onRequest(ctx) {
        return ctx.respond(205, ctx.request.headers['x-json'] === '1' ? { reset: true } : 'reset');
      },
    };
  },
};
`;

function h1get(port: number, ca: Buffer, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/form', servername: 'a.test', ca, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('respond(205, body)', () => {
  const pki = pkiDir();
  const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-205-'));
  let ca: TestCa;
  let gw: InProcessGateway;

  before(async () => {
    ca = createTestCa('Plugin 205 CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    writeFileSync(join(dir, 'reset.mjs'), PLUGIN);
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2: true } },
      load_balancing: { upstreams: upstreams([9]) },
      plugins: [{ name: 'reset', module: join(dir, 'reset.mjs') }],
      middleware: { plugins: ['reset'] },
    });
  });
  after(async () => {
    await gw?.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const json of ['0', '1']) {
    test(`over HTTP/2 the client gets its 205, empty (${json === '1' ? 'object' : 'text'} body)`, async () => {
      const session = await h2connect(gw.gateway.port, ca.ca);
      session.on('error', () => undefined);
      try {
        const res = await h2request(session, { ':method': 'GET', ':path': '/form', 'x-json': json }, undefined, 5_000);
        assert.equal(res.status, 205);
        assert.equal(res.body.length, 0);
        assert.equal(res.headers['content-type'], undefined);
      } finally {
        session.destroy();
      }
    });

    test(`over HTTP/1.1 the 205 says Content-Length: 0 and carries no body (${json === '1' ? 'object' : 'text'} body)`, async () => {
      const res = await h1get(gw.gateway.port, ca.ca, { 'x-json': json });
      assert.equal(res.status, 205);
      assert.equal(res.headers['content-length'], '0');
      assert.equal(res.body, '');
      assert.equal(res.headers['content-type'], undefined);
    });
  }
});
