// Client-initiated TLS renegotiation (TLS 1.2) is refused on the TLS port, over HTTPS/1.1 and h2 listeners alike.
// What was wrong: node's TLS servers accept it (up to 3 times in 10 minutes per connection, then they drop it), so
// a client could make the gateway run a full handshake again, with its private-key operation, on a connection it
// already holds, outside the handshake bound of timeouts.header and the per-client connection cap: the handshake CPU
// exhaustion of CVE-2011-1473, which nginx answers by refusing every client-initiated renegotiation, and which
// RFC 9113 §9.2.1 forbids over HTTP/2 anyway. The gateway never asks for client certificates, so it has no use for
// one. What is right now: the listener's contexts (the default one and each SNI one, as a reload builds them too) carry
// SSL_OP_NO_RENEGOTIATION: the server answers a renegotiation's ClientHello with the no_renegotiation alert (which
// OpenSSL clients take as fatal), and a connection that never asks is not touched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const pki = pkiDir();
let ca: TestCa;
let cert: { certFile: string; keyFile: string };
let other: { certFile: string; keyFile: string };
let backend: TestBackend;

before(async () => {
  ca = createTestCa('Renegotiation CA', pki.path);
  cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  other = ca.issue('b.test', { san: ['DNS:b.test'] });
  backend = await startBackend('renegotiation');
});

after(async () => {
  await backend?.stop();
  pki.remove();
});

/** A TLS 1.2 connection offering `alpn`, with SNI `servername`. */
function open(port: number, servername: string, alpn: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ca: ca.ca, servername, maxVersion: 'TLSv1.2', ALPNProtocols: [alpn] });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Asks for a renegotiation: null once it completed, else the error the client got. */
function renegotiate(socket: TLSSocket): Promise<Error | null> {
  return new Promise((resolve) => {
    socket.once('error', (err) => resolve(err));
    socket.once('close', () => resolve(new Error('closed')));
    socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ?? null));
  });
}

/** One HTTP/1.1 request on an open TLS socket, for the host it named in SNI (another is 421): the status line. */
function statusLine(socket: TLSSocket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n')) resolve(data.slice(0, data.indexOf('\r\n')));
    });
    socket.once('error', reject);
    socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

for (const http2 of [false, true]) {
  describe(`TLS listener (http2: ${http2})`, () => {
    let gw: InProcessGateway;
    before(async () => {
      gw = await startInProcess({
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2, certificates: [{ cert_file: other.certFile, key_file: other.keyFile }] } },
        load_balancing: { upstreams: upstreams([backend.port]) },
      });
    });
    after(() => gw?.close());

    for (const servername of ['a.test', 'b.test']) {
      test(`a client-initiated renegotiation is refused (SNI ${servername})`, async () => {
        const socket = await open(gw.gateway.port, servername, 'http/1.1');
        try {
          // A request first: the connection works.
          assert.equal(await statusLine(socket, servername), 'HTTP/1.1 200 OK');
          const err = await renegotiate(socket);
          assert.match(String(err?.message), /no renegotiation/, 'the server refused the renegotiation');
        } finally {
          socket.destroy();
        }
      });
    }
  });
}
