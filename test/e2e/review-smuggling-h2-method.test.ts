// HTTP/2 → HTTP/1.1 translation of the method (found by review). llhttp, on the HTTP/1 port, parses only the methods
// it knows, in their registered upper-case spelling (`delete` is 501 before any phase), but nghttp2 takes any token as
// :method and undici sends it upstream as given. A route's `methods` compare case-sensitively, so an HTTP/2
// `delete` missed the route that guards DELETE and went to a catch-all route without its auth, and `trace` and
// `connect` passed the TRACE/CONNECT refusals; a backend that folds case (Django, Werkzeug, ASP.NET Core) served
// them as DELETE or TRACE. Now an HTTP/2 :method the HTTP/1 port would refuse is 501 on its stream, before any
// phase: nothing reaches the backend, and the connection goes on serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { startRecordingUpstream, type RecordingUpstream } from './review-smuggling-upstream.js';

const pki = pkiDir();
let ca: TestCa;
let upstream: RecordingUpstream;
let gw: InProcessGateway;
let session: ClientHttp2Session | undefined;

before(async () => {
  ca = createTestCa('Smuggling method CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = await startRecordingUpstream();
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: upstream.port }], health_check: { enabled: false } } },
    jwt: { secret: TEST_SECRET },
    routes: [
      // Deleting needs a token; anything else on /items is public.
      { name: 'delete-items', match: { path_prefix: '/items', methods: ['DELETE'] }, service: 'api', auth: 'required' },
      { name: 'items', match: { path_prefix: '/items' }, service: 'api', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  session = await h2connect(gw.gateway.port, ca.ca);
});

after(async () => {
  session?.close();
  await gw?.close();
  await upstream?.close();
  pki.remove();
});

test('the setting under attack: DELETE needs a token, GET and a known extension method (PURGE) are served', async () => {
  assert.equal((await h2request(session!, { ':method': 'DELETE', ':path': '/items/1' })).status, 401);
  const before = upstream.received();
  assert.equal((await h2request(session!, { ':method': 'GET', ':path': '/items/1' })).status, 200);
  assert.equal((await h2request(session!, { ':method': 'PURGE', ':path': '/items/2' })).status, 200);
  const sent = upstream.received().slice(before.length);
  assert.match(sent, /^GET \/items\/1 HTTP\/1\.1\r\n/m);
  assert.match(sent, /^PURGE \/items\/2 HTTP\/1\.1\r\n/m);
  assert.doesNotMatch(sent, /^DELETE /m);
});

test('HTTP/2: a :method in another case, or one the HTTP/1 port does not know, is 501 and never reaches the backend', async () => {
  const before = upstream.received().length;
  for (const method of ['delete', 'Delete', 'trace', 'connect', 'head', 'get', 'G_E-T', 'DELETE1']) {
    const res = await h2request(session!, { ':method': method, ':path': '/items/1' });
    assert.equal(res.status, 501, method);
    assert.equal((JSON.parse(res.body.toString()) as { code: string }).code, 'not_implemented', method);
  }
  assert.equal(upstream.received().slice(before), '', 'nothing reached the backend');
  // Refused on its stream only: the connection goes on serving.
  assert.equal((await h2request(session!, { ':method': 'GET', ':path': '/items/ok' })).status, 200);
  assert.equal(gw.logs.filter((l) => l.msg === 'Request Completed' && l.status === 501).length >= 8, true, 'each refusal is logged');
});

test('HTTP/1.1 on the same port already had the rule: the same spellings are 501 from its parser', async () => {
  const before = upstream.received().length;
  for (const method of ['delete', 'trace', 'G_E-T']) {
    const socket = tlsConnect({ port: gw.gateway.port, host: '127.0.0.1', ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
    const answer = responseUntilClose(socket);
    socket.write(`${method} /items/1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
    assert.equal((await answer).status, 501, method);
  }
  assert.equal(upstream.received().slice(before), '');
});
