// A WebSocket routed to an `http2: true` service goes to its upstream over HTTP/1.1, on a TLS connection that offers
// ALPN http/1.1 alone (balancer/backend.ts upgradeDispatcher). An upstream that speaks h2 alone refuses that
// handshake with a no_application_protocol alert: the client gets 502, as before. That refusal was logged as
// `Upstream TLS Failed` on every handshake: a line any client could have the gateway write at will, and one that
// blamed TLS (certificates, handshakes) for what is the upstream's protocol. It is now `Upstream Has No HTTP/1.1 For
// WebSocket`, written at most once per upstream per minute (with the count of refusals it stands for since the last
// one); each request's access line still carries its 502 and the cause. A certificate the gateway refuses is still
// `Upstream TLS Failed`, once per request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const HANDSHAKES = 5;
const NO_HTTP1 = 'Upstream Has No HTTP/1.1 For WebSocket';
const TLS_FAILED = 'Upstream TLS Failed';

/** An HTTPS upstream that speaks h2 alone (no http/1.1 in its ALPN; `allowHTTP1`: both), answering plain requests 200. */
async function h2Upstream(cert: Buffer, key: Buffer, allowHTTP1 = false): Promise<{ port: number; close(): Promise<void> }> {
  const server: Http2SecureServer = createSecureServer({ cert, key, allowHTTP1 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('h2 only');
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A WebSocket handshake through the gateway on a connection of its own: its status (the connection closes after). */
async function handshake(port: number, path: string): Promise<number> {
  const socket = await openSocket(port);
  socket.on('error', () => undefined);
  const answer = responseUntilClose(socket, 10_000);
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  socket.end();
  return (await answer).status;
}

describe('a WebSocket refused by an h2-only TLS upstream of an http2 service', () => {
  const pki = pkiDir();
  let upstream: Awaited<ReturnType<typeof h2Upstream>>;
  let both: Awaited<ReturnType<typeof h2Upstream>>;
  let gw: InProcessGateway;

  before(async () => {
    const ca = createTestCa('Upstream CA', pki.path);
    const cert = ca.issue('api.internal');
    upstream = await h2Upstream(cert.cert, cert.key);
    both = await h2Upstream(cert.cert, cert.key, true);
    const health = { enabled: false };
    const upstreams = [{ name: 'h2only', address: '127.0.0.1', port: upstream.port }];
    gw = await startInProcess({
      services: {
        h2: { http2: true, retries: 0, tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' }, upstreams, health_check: health },
        // An upstream that offers http/1.1 too, checked against a name its certificate does not have: a real TLS
        // failure, for plain requests (h2) and WebSockets (http/1.1) alike.
        wrongname: {
          http2: true,
          retries: 0,
          tls: { enabled: true, ca_file: ca.caFile, servername: 'other.internal' },
          upstreams: [{ name: 'both', address: '127.0.0.1', port: both.port }],
          health_check: health,
        },
      },
      routes: [
        { name: 'h2', match: { path_prefix: '/h2/' }, service: 'h2' },
        { name: 'wrongname', match: { path_prefix: '/wrongname/' }, service: 'wrongname' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.allSettled([upstream?.close(), both?.close()]);
    pki.remove();
  });

  test('each handshake is a 502 with its cause on its access line; one operational line, not TLS Failed', async () => {
    const from = gw.logs.length;
    for (let i = 0; i < HANDSHAKES; i++) assert.equal(await handshake(gw.gateway.port, `/h2/ws${i}`), 502, `handshake ${i}`);
    const completed = (): Array<Record<string, unknown>> => gw.logs.slice(from).filter((l) => l.msg === 'Request Completed');
    await waitFor(() => completed().length === HANDSHAKES, 'an access line per handshake');
    for (const line of completed()) {
      assert.equal(line.status, 502);
      assert.equal(line.error, 'UPSTREAM_TLS');
      assert.match(String(line.cause), /NO_APPLICATION_PROTOCOL/);
    }
    const lines = gw.logs.slice(from);
    assert.deepEqual(lines.filter((l) => l.msg === TLS_FAILED), [], 'the refusal is not a TLS failure');
    const refusals = lines.filter((l) => l.msg === NO_HTTP1);
    assert.equal(refusals.length, 1, 'one line for the upstream in the interval, not one per handshake');
    assert.equal(refusals[0]!.upstream, `127.0.0.1:${upstream.port}`);
    assert.equal(refusals[0]!.upstream_service, 'h2');
    assert.equal(refusals[0]!.service, 'portcullis', 'the process, as on every line: no second service key');
    assert.equal(refusals[0]!.suppressed, 0);
    assert.equal(refusals[0]!.level, 40, 'a warning');
    // Plain requests to the same upstream still go over h2.
    const plain = await fetch(`${gw.url}/h2/plain`);
    assert.equal(plain.status, 200);
    assert.equal(await plain.text(), 'h2 only');
  });

  test('a certificate the gateway refuses is still Upstream TLS Failed, once per request', async () => {
    const from = gw.logs.length;
    for (let i = 0; i < 2; i++) assert.equal(await handshake(gw.gateway.port, `/wrongname/ws${i}`), 502);
    assert.equal((await fetch(`${gw.url}/wrongname/plain`)).status, 502);
    await waitFor(() => gw.logs.slice(from).filter((l) => l.msg === TLS_FAILED).length === 3, 'a TLS Failed line per request');
    for (const line of gw.logs.slice(from).filter((l) => l.msg === TLS_FAILED)) assert.equal(line.reason, 'name mismatch');
    assert.deepEqual(gw.logs.slice(from).filter((l) => l.msg === NO_HTTP1), []);
  });
});
