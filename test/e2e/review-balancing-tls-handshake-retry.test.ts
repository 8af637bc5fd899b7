// What was wrong: an HTTPS upstream that accepts the TCP connection and closes it during the TLS handshake (a
// terminator at its connection limit, a process going down) failed the request with ECONNRESET, which the gateway
// read as a connection broken after the request may have been sent: a POST (any non-idempotent method) got 502
// upstream_reset and was not tried on the service's other upstream. No byte of a request goes out before the
// handshake is done: the request never reached the upstream, and README's `load_balancing.retries` promises that
// such a request is retried whatever its method.
// What is right now: a connection that failed before it was established (the TLS connector's own error) is a
// failure before sending: the POST goes to the other upstream, with its whole body, and the upstream that cut the
// handshake still counts as failed for passive health.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
const client = createClient();
let good: Server;
let cutter: TcpServer;
let handshakesCut = 0;
const bodies: string[] = [];
let gw: InProcessGateway | undefined;

before(async () => {
  const ca = createTestCa('Upstream CA', pki.path);
  const cert = ca.issue('orders.internal', { san: ['DNS:orders.internal', 'IP:127.0.0.1'] });
  good = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      bodies.push(body);
      res.end(`stored ${body.length}`);
    });
  });
  // Accepts the connection, then drops it before any TLS is spoken: the client's ClientHello is never answered.
  cutter = createTcpServer((socket) => {
    handshakesCut++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => good.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => cutter.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: {
      strategy: 'round_robin',
      // The cutter first: round robin's first pick.
      upstreams: [
        { name: 'cutter', address: '127.0.0.1', port: (cutter.address() as AddressInfo).port },
        { name: 'good', address: '127.0.0.1', port: (good.address() as AddressInfo).port },
      ],
      retries: 1,
      tls: { enabled: true, ca_file: ca.caFile },
    },
  });
});

after(async () => {
  await gw?.close();
  await client.close();
  good.closeAllConnections();
  await new Promise<void>((resolve) => good.close(() => resolve()));
  await new Promise<void>((resolve) => cutter.close(() => resolve()));
  pki.remove();
});

test('a POST whose TLS handshake the first upstream cut is sent to the other upstream, body whole', async () => {
  const body = 'order='.padEnd(20_000, 'x');
  const res = await client.request(`${gw!.url}/orders`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
  assert.equal(handshakesCut, 1, 'the first attempt went to the upstream that cut the handshake');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, `stored ${body.length}`);
  assert.deepEqual(bodies, [body], 'the other upstream got the request once, with its whole body');
  const retry = gw!.logs.find((l) => l.msg === 'Upstream Retry');
  assert.ok(retry, 'an Upstream Retry line');
  // The cutter is still the one to blame: out of rotation after its failure.
  assert.equal(gw!.logs.filter((l) => l.msg === 'Upstream Down' && l.upstream === retry.upstream).length, 1);
});
