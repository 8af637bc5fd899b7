// The redirect port (server.http_redirect) answered a head node's parser refused (400, 431, 408), a connection over
// server.max_connections_per_client (429), a CONNECT (405) and a connection flooding pipelined requests (closed)
// without a log line: the proxy port writes `Connection Refused` for each (proxy-events.ts), and an operator looking
// for why clients of port 80 failed found nothing. They are now logged as the proxy port's are, with
// `"listener":"redirect"`.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, pipelineUnread, rawRequest, readUntil, type RawResponse } from '../helpers/raw.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const PER_CLIENT = 3;

describe('redirect port refusals are logged', () => {
  const certificate = aTestCertificateHooks('review5-redirect-log');
  let gw: InProcessGateway;
  let port: number;

  before(async () => {
    gw = await startInProcess({
      server: {
        tls: { cert_file: certificate.certFile, key_file: certificate.keyFile },
        http_redirect: { listen_port: 0 },
        max_connections_per_client: PER_CLIENT,
        timeouts: { header: '500ms' },
      },
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    certificate.gateways.push(gw);
    port = gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
  });

  /** The Connection Refused lines written since `from` (an index into the logs). */
  function refusalsSince(from: number): Array<Record<string, unknown>> {
    return gw.logs.slice(from).filter((l) => l.msg === 'Connection Refused');
  }

  /** Waits for the one Connection Refused line written since `from`, and returns it. */
  async function oneRefusal(from: number, what: string): Promise<Record<string, unknown>> {
    await waitFor(() => refusalsSince(from).length > 0, `the Connection Refused line of ${what}`);
    const lines = refusalsSince(from);
    assert.equal(lines.length, 1, `${what}: ${JSON.stringify(lines)}`);
    return lines[0]!;
  }

  /** The answer's status, its body's request_id, and the log line: the same request_id, status and code. */
  function assertLogged(line: Record<string, unknown>, res: RawResponse, status: number, error: string): void {
    assert.equal(res.status, status);
    const body = JSON.parse(res.body) as { request_id?: string };
    assert.equal(line.level, 30);
    assert.equal(line.listener, 'redirect');
    assert.equal(line.client, '127.0.0.1');
    assert.equal(line.status, status);
    assert.equal(line.error, error);
    assert.equal(line.request_id, body.request_id);
    assert.equal(res.headers['x-request-id'], body.request_id);
  }

  test('a malformed head: 400 BAD_REQUEST, logged with its request id', async () => {
    const from = gw.logs.length;
    const res = await rawRequest(port, 'GET /a HTTP/1.1\r\nHost: a.test\r\nBad Header: x\r\n\r\n');
    assertLogged(await oneRefusal(from, 'the 400'), res, 400, 'BAD_REQUEST');
  });

  test('headers over the limit: 431 HEADERS_TOO_LARGE, logged', async () => {
    const from = gw.logs.length;
    const res = await rawRequest(port, `GET /a HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    assertLogged(await oneRefusal(from, 'the 431'), res, 431, 'HEADERS_TOO_LARGE');
  });

  test('a head not complete within timeouts.header: 408 REQUEST_TIMEOUT, logged', async () => {
    const from = gw.logs.length;
    const res = await rawRequest(port, 'GET /a HTTP/1.1\r\nHost: a.test\r\n');
    assertLogged(await oneRefusal(from, 'the 408'), res, 408, 'REQUEST_TIMEOUT');
  });

  test('a CONNECT: 405 METHOD_NOT_ALLOWED, logged (its answer has no request id)', async () => {
    const from = gw.logs.length;
    const res = await rawRequest(port, 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n');
    assert.equal(res.status, 405);
    const line = await oneRefusal(from, 'the 405');
    assert.equal(line.listener, 'redirect');
    assert.equal(line.client, '127.0.0.1');
    assert.equal(line.status, 405);
    assert.equal(line.error, 'METHOD_NOT_ALLOWED');
    assert.equal(line.request_id, undefined);
  });

  test('a connection closed for its pipelined requests: logged at warn with PIPELINED_REQUESTS', async () => {
    const from = gw.logs.length;
    const result = await pipelineUnread(port, 'GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(3_000), 300);
    assert.ok(result.closed);
    const line = await oneRefusal(from, 'the pipelined flood');
    assert.equal(line.level, 40);
    assert.equal(line.listener, 'redirect');
    assert.equal(line.error, 'PIPELINED_REQUESTS');
    assert.equal(line.client, '127.0.0.1');
    assert.ok(typeof line.waiting === 'number' && line.waiting > 128, `waiting ${String(line.waiting)}`);
  });

  test('a connection over max_connections_per_client: 429 TOO_MANY_CONNECTIONS, logged', async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < PER_CLIENT; i++) {
        const socket = await openSocket(port);
        held.push(socket);
        // Answered: the gateway has counted this connection before the next one is opened.
        socket.write('GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n');
        await readUntil(socket, (d) => d.includes('\r\n\r\n'));
      }
      const from = gw.logs.length;
      const res = await rawRequest(port, 'GET /over HTTP/1.1\r\nHost: a.test\r\n\r\n');
      assertLogged(await oneRefusal(from, 'the 429'), res, 429, 'TOO_MANY_CONNECTIONS');
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});
