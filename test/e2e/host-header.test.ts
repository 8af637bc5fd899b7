// The Host header cannot take a request past a host route's auth: any authority a backend could read as another host
// is refused with 400 before routing, over HTTP/1.1 and HTTP/2, and nothing reaches the upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

let backend: TestBackend;
let gw: InProcessGateway;
let tlsGw: InProcessGateway;
const pki = pkiDir();
const ca = createTestCa('Host CA', pki.path);

/** admin.example.com needs a token; everything else is public and goes to the same backend. */
function routes(): Record<string, unknown> {
  return {
    services: { site: { upstreams: [{ name: 'site', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'admin', match: { hosts: ['admin.example.com', '127.0.0.1'] }, service: 'site', auth: 'required' },
      // A wildcard makes the matcher look up the host's suffixes: a long host must be refused before that.
      { name: 'internal', match: { hosts: ['*.internal.example.com'] }, service: 'site', auth: 'required' },
      { name: 'www', match: { path_prefix: '/' }, service: 'site', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  };
}

before(async () => {
  backend = await startBackend('site');
  gw = await startInProcess(routes());
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  tlsGw = await startInProcess({ ...routes(), server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
});

after(async () => {
  await gw.close();
  await tlsGw.close();
  await backend.stop();
  pki.remove();
});

function get(host: string, extra = ''): Promise<{ status: number; body: string }> {
  return rawRequest(gw.gateway.port, `GET /console HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);
}

test('the admin host needs a token, other hosts do not (the setting the other tests attack)', async () => {
  assert.equal((await get('admin.example.com')).status, 401);
  assert.equal((await get('ADMIN.example.com.:8080')).status, 401);
  assert.equal((await get('127.0.0.1')).status, 401);
  const open = await get('www.example.com');
  assert.equal(open.status, 200);
  assert.equal((JSON.parse(open.body) as EchoBody).headers.host, 'www.example.com');
});

test('HTTP/1.1: every authority a backend could read as the admin host is refused before routing', async () => {
  const hits = backend.hits;
  const tricks = [
    'x@admin.example.com', // new URL() reads admin.example.com
    'x:1@admin.example.com',
    'www.example.com:80@admin.example.com',
    'admin.example.com/x',
    'admin.example.com x',
    'admin.example.com:99999',
    '127.1', // 127.0.0.1 to a WHATWG URL parser
    '0x7f.0.0.1',
    '2130706433',
    '127.0.0.01',
    'a..admin.example.com',
    `${'a.'.repeat(200)}example.com`,
  ];
  for (const host of tricks) {
    const res = await get(host);
    assert.equal(res.status, 400, host);
    assert.match(res.body, /"code":"bad_request"/, host);
    assert.ok(!res.body.includes(host), `the 400 does not echo ${host}`);
  }
  assert.equal(backend.hits, hits, 'none reached the upstream');
});

test('HTTP/1.1: a second Host line is refused, whichever comes first', async () => {
  const hits = backend.hits;
  assert.equal((await get('www.example.com', 'Host: admin.example.com\r\n')).status, 400);
  assert.equal((await get('admin.example.com', 'host: www.example.com\r\n')).status, 400);
  assert.equal(backend.hits, hits);
});

test('HTTP/2: :authority decides the route, and a Host that disagrees with it is refused', async () => {
  const session = await h2connect(tlsGw.gateway.port, ca.ca);
  try {
    const hits = backend.hits;
    const mismatch = await h2request(session, { ':path': '/console', ':authority': 'admin.example.com', host: 'www.example.com' });
    assert.equal(mismatch.status, 400);
    const reversed = await h2request(session, { ':path': '/console', ':authority': 'www.example.com', host: 'admin.example.com' });
    assert.equal(reversed.status, 400);
    const userinfo = await h2request(session, { ':path': '/console', ':authority': 'x@admin.example.com' });
    assert.equal(userinfo.status, 400);
    assert.equal(backend.hits, hits, 'none reached the upstream');
    assert.equal((await h2request(session, { ':path': '/console', ':authority': 'admin.example.com' })).status, 401);
    const agreeing = await h2request(session, { ':path': '/console', ':authority': 'www.example.com', host: 'WWW.example.com' });
    assert.equal(agreeing.status, 200);
  } finally {
    session.close();
  }
});

test('a 12,000-character Host costs one 400, not a walk over every suffix', async () => {
  const res = await get(`${'a.'.repeat(6_000)}b`);
  assert.equal(res.status, 400);
  assert.equal((await get('www.example.com')).status, 200, 'the gateway still answers');
});

test('HTTP/1.1 without Host is refused over TLS too, where node never checked (its HTTP/2 server\'s HTTP/1.1 fallback)', async () => {
  const hits = backend.hits;
  const socket = tlsConnect({ port: tlsGw.gateway.port, host: '127.0.0.1', ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => socket.write('GET /console HTTP/1.1\r\nConnection: close\r\n\r\n'));
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.match(text, /"code":"bad_request"/);
  assert.equal(backend.hits, hits);
});
