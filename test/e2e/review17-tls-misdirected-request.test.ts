// What was wrong: with several certificates, a client could handshake as `a.test` (SNI), check a.test's certificate,
// then send `Host: b.test` (or `:authority: b.test` over HTTP/2) and be served b.test's routes under a certificate
// that does not name b.test: domain fronting past any SNI-based filter in front of the gateway.
// What is right now: a TLS request for a host its connection's certificate (the one SNI chose) does not name, while
// another certificate does, is answered 421 Misdirected Request (RFC 9110 §15.5.20); the client opens a connection
// for that host. A host the connection's certificate names (connection reuse, a name two certificates share), a
// host no certificate names (an address, an internal name), and clients that send no SNI are served as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connectRaw } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { h2request } from '../helpers/h2.js';

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Misdirected CA', pki.path);
  const a = ca.issue('a.test', { san: ['DNS:a.test', 'DNS:shared.test', 'IP:127.0.0.1'] });
  const b = ca.issue('b.test', { san: ['DNS:b.test', 'DNS:shared.test'] });
  const wild = ca.issue('wild.test', { san: ['DNS:*.wild.test'] });
  backend = await startBackend('app');
  gw = await startInProcess({
    server: { tls: { cert_file: a.certFile, key_file: a.keyFile, certificates: [{ cert_file: b.certFile, key_file: b.keyFile }, { cert_file: wild.certFile, key_file: wild.keyFile }] } },
    load_balancing: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] },
  });
});
after(async () => {
  await gw?.close();
  await backend?.stop();
  pki.remove();
});

/** One HTTPS/1.1 GET with `servername` as SNI (undefined: none) and `host` as Host. */
function get(servername: string | undefined, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: gw.gateway.port, path: '/x', ca: ca.ca, headers: { host }, agent: false, ...(servername === undefined ? { servername: '' } : { servername }), checkServerIdentity: () => undefined },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS/1.1', () => {
  test('a Host under another certificate than the SNI chose: 421 misdirected_request, nothing forwarded', async () => {
    for (const [sni, host] of [['a.test', 'b.test'], ['b.test', 'a.test'], ['a.test', 'x.wild.test'], ['x.wild.test', 'B.TEST.:443']]) {
      const res = await get(sni, host);
      assert.equal(res.status, 421, `SNI ${sni}, Host ${host}: ${res.body}`);
      assert.equal((JSON.parse(res.body) as { code: string }).code, 'misdirected_request');
    }
  });

  // From review: the first rule ("would the host pick the same certificate") refused a name b.test's certificate
  // shares with the default one, and any host no certificate names on a non-default certificate's connection.
  test('a Host the connection\'s certificate names, one no certificate names, or no SNI at all: served', async () => {
    const served = [
      ['a.test', 'a.test'], ['b.test', 'B.test:8443'], ['x.wild.test', 'y.wild.test'], [undefined, 'b.test'],
      ['b.test', 'shared.test'], ['a.test', 'shared.test'], ['b.test', 'localhost'], ['b.test', '10.0.0.5:8443'], ['x.wild.test', 'internal.lan'],
    ] as const;
    for (const [sni, host] of served) {
      const res = await get(sni, host);
      assert.equal(res.status, 200, `SNI ${String(sni)}, Host ${host}: ${res.body}`);
    }
  });
});

test('HTTP/2: an :authority under another certificate is 421 on that stream; the connection serves its own host on', async () => {
  const session = h2connectRaw(`https://127.0.0.1:${gw.gateway.port}`, { ca: ca.ca, servername: 'a.test' });
  session.on('error', () => undefined);
  try {
    const other = await h2request(session, { ':method': 'GET', ':path': '/x', ':authority': 'b.test' });
    assert.equal(other.status, 421);
    const own = await h2request(session, { ':method': 'GET', ':path': '/x', ':authority': 'a.test' });
    assert.equal(own.status, 200);
  } finally {
    session.close();
  }
});
