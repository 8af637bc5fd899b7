// The redirect listener with server.timeouts.header at 0 (off). Its whole-request bound was twice the header bound,
// so 0 there too: nothing bounded a client on that port, while the proxy port still held the same clients to
// server.timeouts.request. A connection that sent nothing, a head trickled a byte at a time and a body trickled a
// byte at a time each held a redirect connection (and a max_connections_per_client slot, shared with the proxy
// port) for as long as the client liked. Now the redirect port falls back to timeouts.request, as the proxy port does.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { aTestCertificateHooks } from '../helpers/tls.js';

const REQUEST_MS = 1_500;
/** Generous: the bound, node's check cadence (a quarter of it) and a loaded machine's delays, several times over. */
const CLOSED_WITHIN_MS = 4 * REQUEST_MS;

/** Resolves true once the server closes `socket`, false if it is still open after `withinMs` (then destroyed). */
function closedBy(socket: Socket, withinMs: number): Promise<boolean> {
  socket.on('error', () => undefined);
  socket.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Writes `first`, then `piece` every 250 ms until the connection closes. */
function trickle(socket: Socket, first: string, piece: string): void {
  socket.write(first);
  const writer = setInterval(() => {
    if (socket.writable) socket.write(piece);
  }, 250);
  socket.once('close', () => clearInterval(writer));
}

describe('the redirect listener with timeouts.header 0', { timeout: 60_000 }, () => {
  const certificate = aTestCertificateHooks('Redirect Header Off CA');
  let gw: InProcessGateway;
  let redirectPort: number;

  before(async () => {
    gw = await startInProcess({
      server: {
        tls: { cert_file: certificate.certFile, key_file: certificate.keyFile },
        http_redirect: { listen_port: 0 },
        timeouts: { header: 0, request: `${REQUEST_MS}ms`, idle: '30s' },
      },
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    certificate.gateways.push(gw);
    redirectPort = gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
  });

  test('a connection that sends nothing is closed by timeouts.request', async () => {
    const socket = await openSocket(redirectPort);
    assert.equal(await closedBy(socket, CLOSED_WITHIN_MS), true, `still open after ${CLOSED_WITHIN_MS} ms`);
  });

  test('a head trickled a byte at a time is closed by timeouts.request', async () => {
    const socket = await openSocket(redirectPort);
    trickle(socket, 'GET / HTTP/1.1\r\n', 'X');
    assert.equal(await closedBy(socket, CLOSED_WITHIN_MS), true, `still open after ${CLOSED_WITHIN_MS} ms`);
  });

  test('a body trickled a byte at a time is closed by timeouts.request', async () => {
    const socket = await openSocket(redirectPort);
    trickle(socket, 'POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n', 'X');
    assert.equal(await closedBy(socket, CLOSED_WITHIN_MS), true, `still open after ${CLOSED_WITHIN_MS} ms`);
  });

  test('a chunked body trickled a chunk at a time is closed by timeouts.request', async () => {
    const socket = await openSocket(redirectPort);
    trickle(socket, 'POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n', '1\r\nX\r\n');
    assert.equal(await closedBy(socket, CLOSED_WITHIN_MS), true, `still open after ${CLOSED_WITHIN_MS} ms`);
  });
});
