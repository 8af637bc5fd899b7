// A stream refused before node hands it over (node's header-list limits, nghttp2's checks of the request) is not a
// header block left unfinished. The guard read nghttp2's last processed stream id above the last stream node handed
// over as a block still arriving: an honest client whose last stream was so refused had its session sent GOAWAY
// (NO_ERROR) timeouts.header later and then destroyed, with timeouts.idle off and even with a download still open.
// A PING's acknowledgement now tells the two apart (nghttp2 takes no other frame inside a header block).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
let backend: Server;
let gw: InProcessGateway;
let ca: Buffer;

before(async () => {
  // /hold: a download whose last bytes come after 3 s; anything else at once.
  backend = createServer((req, res) => {
    req.resume();
    if (req.url === '/hold') {
      res.write('part ');
      return void setTimeout(() => res.end('rest'), 3_000);
    }
    res.end('ok');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const testCa = createTestCa('Refused Stream CA', pki.path);
  ca = testCa.ca;
  const cert = testCa.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  gw = await startInProcess({
    // idle 0: no idle bound between requests; header 500ms: a block left unfinished is closed quickly.
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: '500ms', idle: 0 } },
    services: { api: { upstreams: upstreams([(backend.address() as AddressInfo).port]), health_check: { enabled: false } } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
});

after(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  backend?.close();
  pki.remove();
});

function session(): { s: ClientHttp2Session; goaways: number[] } {
  const s = connect(`https://127.0.0.1:${gw.gateway.port}`, { ca, servername: 'a.test' });
  s.on('error', () => undefined);
  const goaways: number[] = [];
  s.on('goaway', (code: number) => goaways.push(code));
  return { s, goaways };
}

function request(s: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<{ status?: number; rstCode: number; body: string }> {
  return new Promise((resolve) => {
    const stream = s.request(headers, { endStream: true });
    let status: number | undefined;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ status, rstCode: stream.rstCode ?? 0, body }));
  });
}

const OVERSIZED = { ':path': '/big', 'x-big': 'a'.repeat(20_000) }; // over the 16 KiB header list: node refuses it
const CONTRADICTED = { ':method': 'POST', ':path': '/cl', 'content-length': '5' }; // END_STREAM with no body: nghttp2 refuses it

for (const [name, headers, code] of [
  ['a header list over the limit', OVERSIZED, constants.NGHTTP2_ENHANCE_YOUR_CALM],
  ['a content-length its END_STREAM contradicts', CONTRADICTED, constants.NGHTTP2_PROTOCOL_ERROR],
] as const) {
  test(`a session whose last stream was refused (${name}) is not closed as one holding a header block`, async () => {
    const { s, goaways } = session();
    try {
      assert.equal((await request(s, { ':path': '/ok' })).status, 200);
      const refused = await request(s, headers);
      assert.equal(refused.rstCode, code, 'the stream is refused');
      await sleep(2_500); // five times timeouts.header
      assert.deepEqual(goaways, [], 'no GOAWAY: idle is off and no header block is on its way');
      assert.equal(s.closed || s.destroyed, false);
      assert.deepEqual(await request(s, { ':path': '/ok' }), { status: 200, rstCode: 0, body: 'ok' }, 'the session serves on');
    } finally {
      s.destroy();
    }
  });
}

test('a refused stream beside an open download: the session is not sent GOAWAY while the download runs', async () => {
  const { s, goaways } = session();
  try {
    assert.equal((await request(s, { ':path': '/ok' })).status, 200);
    const download = request(s, { ':path': '/hold' });
    await sleep(100);
    assert.equal((await request(s, OVERSIZED)).rstCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.deepEqual(await download, { status: 200, rstCode: 0, body: 'part rest' });
    assert.deepEqual(goaways, [], 'no GOAWAY');
    assert.deepEqual(await request(s, { ':path': '/ok' }), { status: 200, rstCode: 0, body: 'ok' }, 'the session serves on');
  } finally {
    s.destroy();
  }
});
