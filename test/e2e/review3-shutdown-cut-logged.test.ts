// A response the stop cut at the end of its drain is logged as cut (found by review). When
// server.timeouts.shutdown_drain ran out, the stop closed the connections still open (HTTP/2: sessions), and a
// response still streaming was logged as Request Completed with its status and no error: read as served whole,
// though its client got part of it. It is now logged with error SHUTTING_DOWN, over HTTP/1.1 and HTTP/2 alike; a
// request whose client left on its own during the drain stays a client's departure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** An upstream whose /stream sends its head and a chunk at once, then a chunk every 100 ms for 20 s. */
async function streamingBackend(): Promise<Server> {
  const server = createServer((_req, res) => {
    res.on('error', () => undefined);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    const timer = setInterval(() => res.write('more\n'), 100);
    const stop = setTimeout(() => res.end(), 20_000);
    res.on('close', () => {
      clearInterval(timer);
      clearTimeout(stop);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function completed(gw: InProcessGateway, path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

test('HTTP/1.1 and HTTP/2 responses still streaming when the drain ends are logged SHUTTING_DOWN', async () => {
  const backend = await streamingBackend();
  const pki = pkiDir();
  const ca = createTestCa('Cut CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  // Two gateways: cleartext HTTP/1.1, and TLS with HTTP/2.
  const plain = await startInProcess({
    server: { timeouts: { shutdown_drain: '300ms' } },
    load_balancing: { health_check: { enabled: false }, upstreams: upstreams([(backend.address() as AddressInfo).port]) },
  });
  const secure = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { shutdown_drain: '300ms' } },
    load_balancing: { health_check: { enabled: false }, upstreams: upstreams([(backend.address() as AddressInfo).port]) },
  });
  try {
    const h1 = request(`${plain.url}/stream/h1`);
    h1.end();
    const [res] = (await once(h1, 'response')) as [import('node:http').IncomingMessage];
    res.on('error', () => undefined);
    res.resume();
    assert.equal(res.statusCode, 200);

    const session = connect(`https://127.0.0.1:${secure.gateway.port}`, { ca: ca.ca, servername: 'a.test' });
    session.on('error', () => undefined);
    const stream = session.request({ ':path': '/stream/h2' });
    stream.on('error', () => undefined);
    const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
    stream.resume();
    assert.equal(headers[':status'], 200);

    await Promise.all([plain.gateway.close(), secure.gateway.close()]);
    session.destroy();
    await waitFor(() => completed(plain, '/stream/h1') !== undefined && completed(secure, '/stream/h2') !== undefined, 'both logged');
    for (const line of [completed(plain, '/stream/h1')!, completed(secure, '/stream/h2')!]) {
      assert.equal(line.status, 200, 'the status its client was sent');
      assert.equal(line.error, 'SHUTTING_DOWN', JSON.stringify(line));
    }
  } finally {
    await plain.close();
    await secure.close();
    backend.closeAllConnections();
    backend.close();
    pki.remove();
  }
});

test('a client that leaves on its own during the drain is logged as it was before, not as cut by the stop', async () => {
  const backend = await streamingBackend();
  const gw = await startInProcess({
    server: { timeouts: { shutdown_drain: '2s' } },
    load_balancing: { health_check: { enabled: false }, upstreams: upstreams([(backend.address() as AddressInfo).port]) },
  });
  try {
    const req = request(`${gw.url}/stream/leaves`);
    req.on('error', () => undefined);
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    res.on('error', () => undefined);
    const stopping = gw.gateway.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    res.destroy(); // the client leaves while the stop still drains
    await waitFor(() => completed(gw, '/stream/leaves') !== undefined, 'logged');
    assert.equal(completed(gw, '/stream/leaves')!.error, undefined);
    await stopping;
  } finally {
    await gw.close();
    backend.closeAllConnections();
    backend.close();
  }
});
