// A client that leaves while its request waits for a new upstream connection (a slow TCP connect or TLS handshake).
// What was wrong: once the connection was ready, the gateway ended the departed request with undici's abort, which
// over HTTP/1 destroys the socket: the connection the departed client had waited for was thrown away, and the next
// request (a client still waiting) had to make another, through the same slow connect. With a small
// connections_per_upstream, a burst of clients that give up behind a slow-to-connect upstream kept the others waiting
// one whole connect per departed client. What is right now: the departed request is dropped without a byte written
// and the connection serves the next request in the queue.
//
// The slow connect is an HTTPS upstream behind a TCP relay that holds each new connection's bytes until the test
// lets them through: the gateway's TCP connect is done (the relay counts it), its TLS handshake waits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, rawRequest } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/prometheus.js';

const pki = pkiDir();
let upstream: Server;
let relay: TcpServer;
let gw: InProcessGateway | undefined;
/** Connections the gateway opened to the upstream (through the relay). */
let opened = 0;
const held: Array<() => void> = [];
let holding = true;
const sockets = new Set<Socket>();

/** Pipes `client` to the upstream (its bytes so far included: it was paused). */
function relayTo(client: Socket): void {
  const server = connect((upstream.address() as AddressInfo).port, '127.0.0.1');
  sockets.add(server);
  const teardown = (): void => {
    client.destroy();
    server.destroy();
  };
  for (const s of [client, server]) {
    s.on('error', teardown);
    s.on('close', teardown);
  }
  client.pipe(server);
  server.pipe(client);
}

before(async () => {
  const ca = createTestCa('Upstream CA', pki.path);
  const cert = ca.issue('slow.internal', { san: ['DNS:slow.internal', 'IP:127.0.0.1'] });
  upstream = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => res.end(`served ${req.url}`));
  relay = createTcpServer({ pauseOnConnect: true }, (client) => {
    opened++;
    sockets.add(client);
    if (holding) held.push(() => relayTo(client));
    else relayTo(client);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: {
      upstreams: [{ name: 'slow', address: '127.0.0.1', port: (relay.address() as AddressInfo).port }],
      connections_per_upstream: 1,
      queue_limit: 10,
      queue_timeout: '60s',
      tls: { enabled: true, ca_file: ca.caFile },
    },
    // The handshake is held as long as the test needs: no connect timeout may end it first.
    server: { timeouts: { upstream_connect: '60s' } },
  });
});

after(async () => {
  await gw?.close();
  for (const s of sockets) s.destroy();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  pki.remove();
});

test('the connection a departed client waited for serves the next request instead of being thrown away', async () => {
  // The first client's request opens the pool's only connection, whose handshake the relay holds.
  const leaver = await openSocket(gw!.gateway.port);
  leaver.write('GET /left HTTP/1.1\r\nHost: gw.test\r\n\r\n');
  await waitFor('the gateway to connect for the first request', async () => opened === 1, 10_000);
  // It leaves: the gateway logs it as 499 at once, while its request still waits for the connection.
  leaver.destroy();
  await waitFor('the departed request to be logged', async () => gw!.logs.some((l) => l.path === '/left' && l.status === 499), 10_000);
  // A second client waits behind it for the pool's one connection; then the handshake goes through.
  const waiting = rawRequest(gw!.gateway.port, 'GET /waited HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n', 30_000);
  holding = false;
  for (const release of held.splice(0)) release();
  const res = await waiting;
  assert.equal(res.status, 200);
  assert.equal(res.body, 'served /waited');
  assert.equal(opened, 1, 'the second request went out on the connection made for the first, not on a new one');
});
