// The 408 an HTTP/2 stream gets at server.timeouts.request carries Strict-Transport-Security, as every other answer
// over TLS does. What was wrong: that 408 is written by the listener's stream guard (h2-guard.ts), outside the
// pipeline's response phases, and it was built with X-Proxy-By and X-Request-ID but without HSTS, while the same
// timeout over HTTPS/1.1 (node's 408, proxy-events.ts) and every pipeline answer carry it (README: HSTS on every
// response to a TLS client, errors included, RFC 6797 §8.1). What is right now: it carries server.tls.hsts as a
// reload leaves it (none once HSTS is turned off).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const HSTS = 'max-age=31536000';
const pki = pkiDir();
let ca: TestCa;
let upstream: CountingUpstream;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Timeout HSTS CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = await startCountingUpstream(60_000);
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, hsts: HSTS }, timeouts: { header: '1s', request: '1s' } },
    load_balancing: { upstreams: upstreams([upstream.port]) },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  pki.remove();
});

/** A POST whose body never ends; resolves with the response head once the stream has closed. */
function silentUpload(session: ClientHttp2Session): Promise<IncomingHttpHeaders | undefined> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
    let head: IncomingHttpHeaders | undefined;
    stream.on('error', () => undefined);
    stream.on('response', (h) => (head = h));
    stream.resume();
    stream.on('close', () => resolve(head));
  });
}

test('an HTTP/2 request cut at timeouts.request gets its 408 with Strict-Transport-Security', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  session.on('error', () => undefined);
  try {
    // The reference: a pipeline answer on the same session carries it.
    assert.equal((await h2request(session, { ':method': 'GET', ':path': '/x' })).headers['strict-transport-security'], HSTS);
    const timedOut = silentUpload(session);
    const head = await timedOut;
    assert.equal(head?.[':status'], 408);
    assert.equal(head?.['strict-transport-security'], HSTS);
  } finally {
    session.destroy();
  }
});
