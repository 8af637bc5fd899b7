// The admin port's 429 to a connection over its client's cap (server.max_connections_per_client, connection-limit.ts)
// is written on the socket before any request, outside the admin server's handler, and lacked the security headers
// every other admin answer carries (X-Content-Type-Options: nosniff, the Content-Security-Policy that keeps an answer
// from being run or framed as a document). It carries the same ones now. The proxy port's 429 is unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, rawRequest, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const SECURITY_HEADERS = ['x-content-type-options', 'content-security-policy'] as const;
const GET_READY = 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

/** A keep-alive connection to `port` answered once, so the gateway has counted it: the client's one slot, held. */
async function holdOne(port: number, path: string): Promise<Socket> {
  const socket = await openSocket(port);
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const head = (await readUntil(socket, (d) => d.includes('\r\n\r\n'))).toString('latin1');
  assert.equal(parseHead(head.slice(0, head.indexOf('\r\n\r\n'))).status, 200);
  return socket;
}

describe("the admin port's 429 over the per-client cap", () => {
  let gw: InProcessGateway;

  before(async () => {
    gw = await startInProcess({
      server: { max_connections_per_client: 1 },
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
  });

  after(async () => {
    await gw?.close();
  });

  test('carries the security headers of every other admin answer', async () => {
    const adminPort = gw.gateway.adminPort!;
    // What an admin answer carries, read from one (not restated here).
    const served = await rawRequest(adminPort, GET_READY);
    assert.equal(served.status, 200);
    for (const name of SECURITY_HEADERS) assert.ok(served.headers[name], `the served answer has ${name}`);
    const held = await holdOne(adminPort, '/ready');
    try {
      const refused = await rawRequest(adminPort, GET_READY);
      assert.equal(refused.status, 429);
      assert.equal((JSON.parse(refused.body) as { code?: string }).code, 'too_many_connections');
      assert.equal(refused.headers['retry-after'], '1');
      for (const name of SECURITY_HEADERS) assert.equal(refused.headers[name], served.headers[name], name);
    } finally {
      held.destroy();
    }
    // The slot is freed on the socket's 'close', a turn or more after ours.
    await waitFor(async () => (await rawRequest(adminPort, GET_READY)).status === 200, 'the admin port to take a connection again');
  });

  test("the proxy port's 429 stays as it was (no admin headers)", async () => {
    const held = await holdOne(gw.gateway.port, '/health');
    try {
      const refused = await rawRequest(gw.gateway.port, 'GET /health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
      assert.equal(refused.status, 429);
      for (const name of SECURITY_HEADERS) assert.equal(refused.headers[name], undefined, name);
    } finally {
      held.destroy();
    }
  });
});
