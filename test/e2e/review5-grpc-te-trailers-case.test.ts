// A gRPC upstream refuses a call that does not carry `TE: trailers`, and the gateway passes it on (TE is hop-by-hop,
// RFC 9110 §7.6.1) only when the client's TE names `trailers`. It compared the whole value to 'trailers', so a client
// sending `TE: Trailers` (tokens are case-insensitive, RFC 9110 §10.1.4) or a list such as `TE: trailers, deflate;q=0.5`
// had it dropped, and the upstream refused the call. Now any TE that lists the `trailers` token, in any case, passes
// as `te: trailers` (as nginx's grpc_pass and Envoy do); the other transfer codings it lists stay on the client's hop.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { FLAG, FRAME, clientPreface, frame, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { rawRequest } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
const ca = createTestCa('TE Case CA', pki.path);
const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
const backend = await startBackend('echo');
const ECHO = {
  services: { echo: { upstreams: [{ name: 'echo', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
  routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'echo', auth: 'off' }],
};
const gw = await startInProcess(ECHO);
// HTTP/2 over TLS: the only TE HTTP/2 allows is "trailers", but in any case (nghttp2 compares it case-insensitively).
const tlsGw = await startInProcess({ ...ECHO, server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
const port = Number(new URL(gw.url).port);
after(async () => {
  await gw.close();
  await tlsGw.close();
  await backend.stop();
  pki.remove();
});

/** The TE the backend received for an HTTP/1.1 POST of `type` carrying `teLines` (header lines, CRLF-ended). */
async function teSeen(teLines: string, type = 'application/grpc'): Promise<EchoBody['headers'][string]> {
  const res = await rawRequest(
    port,
    `POST /pkg.Echo/Unary HTTP/1.1\r\nHost: a.test\r\nContent-Type: ${type}\r\n${teLines}Content-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as EchoBody).headers.te;
}

test('a gRPC call over HTTP/1.1 whose TE names trailers in any case or in a list reaches the upstream with te: trailers', async () => {
  assert.equal(await teSeen('TE: trailers\r\n'), 'trailers', 'the lower-case value, as before');
  assert.equal(await teSeen('TE: Trailers\r\n'), 'trailers', 'TE: Trailers');
  assert.equal(await teSeen('TE: TRAILERS\r\n'), 'trailers', 'TE: TRAILERS');
  assert.equal(await teSeen('TE: trailers, deflate;q=0.5\r\n'), 'trailers', 'trailers first in a list');
  assert.equal(await teSeen('TE: deflate;q=0.5 , Trailers\r\n'), 'trailers', 'trailers last in a list');
  assert.equal(await teSeen('TE: deflate\r\nTE: trailers\r\n'), 'trailers', 'trailers on a second TE line');
});

test('a TE that does not name trailers, and other codings, stay on the client hop', async () => {
  assert.equal(await teSeen('TE: deflate\r\n'), undefined, 'TE: deflate');
  assert.equal(await teSeen('TE: deflate;q=0.5, gzip\r\n'), undefined, 'a list without trailers');
  assert.equal(await teSeen('TE: trailersx\r\n'), undefined, 'a token that only starts with trailers');
  assert.equal(await teSeen(''), undefined, 'no TE at all');
});

test('a request that is not gRPC still gets no TE upstream, whatever it says', async () => {
  assert.equal(await teSeen('TE: Trailers\r\n', 'application/json'), undefined);
});

/**
 * The TE the backend received for an HTTP/2 gRPC call carrying `te: <te>`, written as raw frames: node's HTTP/2
 * client refuses to send a TE other than the exact 'trailers'.
 */
async function h2TeSeen(te: string): Promise<EchoBody['headers'][string]> {
  const h2 = await rawH2(tlsGw.gateway.port, ca.ca);
  try {
    const block = requestBlock('POST', '/pkg.Echo/Unary', [['content-type', 'application/grpc'], ['te', te]]);
    h2.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block));
    const ended = (): boolean => h2.frames().some((f) => f.stream === 1 && (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0));
    await waitFor(async () => ended(), 'the answer to stream 1');
    const data = h2.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1);
    assert.ok(data.length > 0, 'an echo body');
    return (JSON.parse(Buffer.concat(data.map((f) => f.payload)).toString('utf8')) as EchoBody).headers.te;
  } finally {
    h2.socket.destroy();
  }
}

test('a gRPC call over HTTP/2 with te: Trailers reaches the upstream with te: trailers', async () => {
  assert.equal(await h2TeSeen('trailers'), 'trailers', 'the lower-case value, as before');
  assert.equal(await h2TeSeen('Trailers'), 'trailers', 'te: Trailers');
});
