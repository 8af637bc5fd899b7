// An upstream status code outside 100-599 (found by review). RFC 9110 §15 has status codes from 100 to 599, and
// "values outside the range 100..599 are invalid"; llhttp (in undici) takes any three digits. An HTTP/1 upstream's
// 600 or 999 was relayed as it came to HTTP/1.1 clients, while an HTTP/2 client got 502 proxy_error from node's
// refusal of the head (logged as the gateway's own fault). Now such a response is 502 upstream_protocol for both, with
// nothing of it relayed, and the upstream connection is not reused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { connect } from 'node:tls';
import { responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { startRecordingUpstream, type RecordingUpstream } from './review-smuggling-upstream.js';

const STATUSES = ['600', '700', '999'];
const pki = pkiDir();
let upstream: RecordingUpstream;
let gw: InProcessGateway;
let session: ClientHttp2Session | undefined;
let clientCa: Buffer;

before(async () => {
  const ca = createTestCa('Status range CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const answers: Record<string, string> = {};
  for (const status of STATUSES) answers[`/s${status}`] = `HTTP/1.1 ${status} Odd\r\nX-Leak: yes\r\nContent-Length: 4\r\n\r\nodd!`;
  upstream = await startRecordingUpstream(answers);
  gw = await startInProcess({
    // TLS with ALPN h2 and http/1.1: one port for both kinds of client.
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: upstream.port }], health_check: { enabled: false } } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api', auth: 'off' }],
  });
  session = await h2connect(gw.gateway.port, ca.ca);
  clientCa = ca.ca;
});

after(async () => {
  session?.close();
  await gw?.close();
  await upstream?.close();
  pki.remove();
});

test('HTTP/1.1 client: a status above 599 is 502 upstream_protocol, nothing of the response relayed', async () => {
  for (const status of STATUSES) {
    const socket = connect({ port: gw.gateway.port, host: '127.0.0.1', ca: clientCa, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
    const answer = responseUntilClose(socket);
    socket.write(`GET /s${status} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
    const res = await answer;
    assert.equal(res.status, 502, status);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'upstream_protocol', status);
    assert.equal(res.headers['x-leak'], undefined, status);
  }
  // The upstream connection is not reused for what the next response might be read from.
  const next = await h2request(session!, { ':method': 'GET', ':path': '/fine' });
  assert.equal(next.status, 200);
  assert.equal(next.body.toString(), '/fine');
});

test('HTTP/2 client: the same, as upstream_protocol (the upstream broke the protocol, not the gateway)', async () => {
  for (const status of STATUSES) {
    const res = await h2request(session!, { ':method': 'GET', ':path': `/s${status}` });
    assert.equal(res.status, 502, status);
    assert.equal((JSON.parse(res.body.toString()) as { code: string }).code, 'upstream_protocol', status);
  }
  const logged = gw.logs.filter((line) => line.msg === 'Request Completed' && line.status === 502);
  assert.ok(logged.length >= STATUSES.length * 2);
  assert.ok(logged.every((line) => line.error === 'UPSTREAM_PROTOCOL'), JSON.stringify(logged.map((line) => line.error)));
});
