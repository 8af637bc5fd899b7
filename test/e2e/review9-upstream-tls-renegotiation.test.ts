// An HTTPS upstream may not renegotiate TLS 1.2 with the gateway: each renegotiation is a full handshake the gateway
// pays CPU for, and node's TLS clients accept any number of them (50 in 36 ms on one connection). Every upstream
// connection is opened with SSL_OP_NO_RENEGOTIATION (proxy/upstream-tls.ts), as the gateway's own listener refuses its
// clients': the upstream's HelloRequest is answered with the no_renegotiation alert, and an OpenSSL upstream then ends
// the connection. The request on it is a 502, logged once, counted
// against the upstream (its fault) and, since it may have been processed, never retried unless idempotent; the next
// request works on a new connection. The gateway sees the upstream's close (upstream_reset) or its handshake_failure
// alert (upstream_tls, reason "alert after the handshake: ..."), whichever it reads first. HTTP/2 upstreams, WebSocket and health-check pools share the connector; a node
// HTTP/2 server cannot be the test's upstream (its renegotiate() aborts its own process in node_http2.cc), so the
// members here are an HTTP/1.1 POST (never retried) and GET (retried on the other upstream, as a reset is).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** Renegotiations the upstream asks for per request on /renegotiate before it answers. */
const ASKED = 5;

interface Renegotiating {
  readonly port: number;
  /** Renegotiations that completed. */
  succeeded: number;
  /** TCP connections accepted. */
  connections: number;
  /** Requests for /renegotiate received. */
  requests: number;
  close(): Promise<void>;
}

/** Asks the connection for ASKED renegotiations, one after another; answers once they are done or one failed. */
function renegotiate(socket: TLSSocket, state: Renegotiating, answer: () => void): void {
  let left = ASKED;
  const next = (): void => {
    if (left-- === 0) return answer();
    const asked = socket.renegotiate({}, (err) => {
      if (err) return; // refused: the connection is gone
      state.succeeded++;
      next();
    });
    if (!asked) return;
  };
  next();
}

async function listen(server: Server, state: Renegotiating): Promise<Renegotiating> {
  server.on('connection', () => state.connections++);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (state as { port: number }).port = (server.address() as AddressInfo).port;
  return state;
}

function stateFor(close: () => Promise<void>): Renegotiating {
  return { port: 0, succeeded: 0, connections: 0, requests: 0, close };
}

/** An HTTP/1.1 TLS 1.2 upstream: /renegotiate asks for renegotiations first, anything else answers at once. */
async function h1Upstream(ca: TestCa): Promise<Renegotiating> {
  const cert = ca.issue('api.internal', { stem: 'h1' });
  const server: Server = createServer({ cert: cert.cert, key: cert.key, maxVersion: 'TLSv1.2' }, (req, res) => {
    const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); };
    if (req.url === '/renegotiate') state.requests++;
    req.resume();
    req.on('end', () => (req.url === '/renegotiate' ? renegotiate(req.socket as TLSSocket, state, answer) : answer()));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const state = stateFor(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return listen(server, state);
}

describe('an HTTPS upstream cannot renegotiate TLS with the gateway', () => {
  const pki = pkiDir();
  const client = createClient();
  const gateways: InProcessGateway[] = [];
  let ca: TestCa;
  let h1: Renegotiating;

  before(async () => {
    ca = createTestCa('Renegotiation CA', pki.path);
    h1 = await h1Upstream(ca);
  });

  after(async () => {
    for (const gw of gateways) await gw.close();
    await Promise.all([h1].map((u) => u?.close()));
    await client.close();
    pki.remove();
  });

  test('a POST: the first renegotiation fails, the request is a 502 logged once, the next one works on a new connection', async () => {
    const u = h1;
    const gw = await startInProcess({
      load_balancing: {
        upstreams: [{ name: 'api-1', address: '127.0.0.1', port: u.port }],
        tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
      },
    });
    gateways.push(gw);
    const refused = await client.request(`${gw.url}/renegotiate`, { method: 'POST', body: 'order=1', headers: { 'content-type': 'text/plain' } });
    assert.equal(u.succeeded, 0, 'no renegotiation completed');
    assert.equal(refused.status, 502);
    const id = refused.headers['x-request-id'];
    const completed = gw.logs.filter((l) => l.msg === 'Request Completed' && l.request_id === id);
    assert.equal(completed.length, 1);
    // Which the gateway reads first, the upstream's close or its alert, is a race: either way a 502 the upstream is
    // blamed for, and the request may have been processed.
    assert.ok(['UPSTREAM_RESET', 'UPSTREAM_TLS'].includes(String(completed[0]?.error)), String(completed[0]?.error));
    const tlsLines = gw.logs.filter((l) => l.msg === 'Upstream TLS Failed' && l.request_id === id);
    assert.ok(tlsLines.length <= 1, 'logged once at most');
    if (tlsLines.length === 1) assert.match(String(tlsLines[0]?.reason), /^alert after the handshake: /);
    const connections = u.connections;
    const next = await client.request(`${gw.url}/plain`);
    assert.equal(next.status, 200);
    assert.equal(next.text, 'ok');
    assert.equal(u.connections, connections + 1, 'on a new connection');
  });

  test('a POST that may have been processed is not sent to a second upstream; a GET is', async () => {
    const other = await h1Upstream(ca);
    try {
      const gw = await startInProcess({
        load_balancing: {
          strategy: 'round_robin',
          upstreams: [{ name: 'api-1', address: '127.0.0.1', port: h1.port }, { name: 'api-2', address: '127.0.0.1', port: other.port }],
          tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
        },
      });
      gateways.push(gw);
      const earlier = h1.requests;
      const statuses: number[] = [];
      for (let i = 0; i < 2; i++) statuses.push((await client.request(`${gw.url}/renegotiate`, { method: 'POST', body: 'x' })).status);
      assert.deepEqual(statuses, [502, 502], 'each POST tried once, wherever it went');
      for (let i = 0; i < 2; i++) assert.equal((await client.request(`${gw.url}/renegotiate`)).status, 502, 'both upstreams refused: nothing left to retry on');
      assert.equal(h1.succeeded + other.succeeded, 0);
      assert.equal(h1.requests - earlier + other.requests, 2 + 4, 'two POSTs once each, two GETs twice each');
    } finally {
      await other.close();
    }
  });
});
