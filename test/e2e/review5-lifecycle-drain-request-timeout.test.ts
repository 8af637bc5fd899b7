// timeouts.request still applies while a stop drains (found by review). node:http's server.close() (https's and the
// HTTP/2 server's too) also stops the check that enforces requestTimeout and headersTimeout, so a client trickling
// its body one byte at a time held a SIGTERM for the whole server.timeouts.shutdown_drain and was logged 499
// SHUTTING_DOWN, where the same client outside a stop got its 408 at timeouts.request. It now gets the same 408
// during the drain, and the stop ends then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { startBackend } from '../helpers/backends.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** A TLS connection offering HTTP/1.1 only (ALPN), as a client without HTTP/2 would. */
function tlsSocket(port: number, ca: Buffer): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'a.test', ca, ALPNProtocols: ['http/1.1'] }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends a POST's head with a 1000-byte body announced, then one byte of it every 100 ms until the socket closes. */
async function trickle(port: number, ca: Buffer | undefined): Promise<{ socket: Duplex; stop: () => void }> {
  const socket = ca === undefined ? await openSocket(port) : await tlsSocket(port, ca);
  socket.write('POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n');
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write('x');
  }, 100);
  socket.once('close', () => clearInterval(timer));
  return { socket, stop: () => clearInterval(timer) };
}

/** Outside a stop and during one, a trickled body gets its 408 at timeouts.request; the stop then ends, drained. */
async function trickledBodies(server: ConfigInput, ca?: Buffer): Promise<void> {
  const backend = await startBackend('b1');
  // The drain bound is far beyond the request bound: a stop that waited it out would not be "drained".
  const gw = await startInProcess({
    server: { ...server, timeouts: { header: '1s', request: '1500ms', shutdown_drain: '20s' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  const clients: Array<{ socket: Duplex; stop: () => void }> = [];
  try {
    // Outside a stop: the 408 at timeouts.request, as the README says.
    const before = await trickle(gw.gateway.port, ca);
    clients.push(before);
    const first = await responseUntilClose(before.socket, 15_000);
    assert.equal(first.status, 408, JSON.stringify(first));

    // During a stop: the same.
    const during = await trickle(gw.gateway.port, ca);
    clients.push(during);
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Select Upstream').length === 2, 'the request to be forwarded while its body trickles');
    const stopping = gw.gateway.close();
    const second = await responseUntilClose(during.socket, 15_000);
    assert.equal(second.status, 408, JSON.stringify(second));
    await stopping;
    const lines = gw.logs.filter((l) => l.msg === 'Request Completed');
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.equal(lines[1]!.status, 408, JSON.stringify(lines[1]));
    assert.equal(lines[1]!.error, 'REQUEST_TIMEOUT', JSON.stringify(lines[1]));
    const stopped = gw.logs.find((l) => l.msg === 'Gateway Stopped');
    assert.equal(stopped?.drained, true, 'the stop ended once the request had its answer, within the drain bound');
  } finally {
    for (const client of clients) {
      client.stop();
      client.socket.destroy();
    }
    await gw.close();
    await backend.stop();
  }
}

test('cleartext: a body trickled during a stop gets its 408 at timeouts.request, and the stop ends then', async () => {
  await trickledBodies({});
});

test('TLS with HTTP/2 on, an HTTP/1.1 client: the same 408 during a stop, and the stop ends then', async () => {
  const pki = pkiDir();
  try {
    const ca = createTestCa('Drain CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    await trickledBodies({ tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2: true } }, ca.ca);
  } finally {
    pki.remove();
  }
});
