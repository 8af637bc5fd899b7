// Two admin-port answers lacked what every other admin answer carries. The raw answers node's parser refusals get
// (400, 431, 408, written on the socket by adminClientError) had neither X-Content-Type-Options: nosniff nor the
// Content-Security-Policy (answer-headers.ts). And the bare 500 writeJson sends when node refuses an error's head
// cleared every stored header: the security headers, and a Connection: close stored for an answer given mid-upload
// (leaveBody), so the 500 went out keep-alive on a connection whose refused upload node then read as requests. Both
// now carry the security headers, compared here with a served /ready's (no value restated), and the 500 keeps its close.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { loadDashboard } from '../../src/admin/assets.js';
import { sendAdminError, startAdminServer, type AdminServer } from '../../src/admin/server.js';
import { GatewayError } from '../../src/errors.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { leaveBody } from '../../src/pipeline/request-body.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, rawRequest, readUntil, type RawResponse } from '../helpers/raw.js';

const SECURITY_HEADERS = ['x-content-type-options', 'content-security-policy'] as const;
const GET_READY = 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

function assertSameSecurityHeaders(answer: RawResponse | { headers: Record<string, string> }, served: RawResponse, what: string): void {
  for (const name of SECURITY_HEADERS) {
    assert.ok(served.headers[name], `the served answer has ${name}`);
    assert.equal(answer.headers[name], served.headers[name], `${what}: ${name}`);
  }
}

describe("the admin port's answers to requests its parser refused", () => {
  let gw: InProcessGateway;

  before(async () => {
    gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] } });
  });

  after(async () => {
    await gw?.close();
  });

  test('a malformed head (400) and an oversized one (431) carry the security headers', async () => {
    const port = gw.gateway.adminPort!;
    const served = await rawRequest(port, GET_READY);
    assert.equal(served.status, 200);
    const malformed = await rawRequest(port, 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n');
    assert.equal(malformed.status, 400);
    assertSameSecurityHeaders(malformed, served, '400');
    assert.equal(malformed.headers.connection, 'close');
    const oversized = await rawRequest(port, `GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(oversized.status, 431);
    assertSameSecurityHeaders(oversized, served, '431');
  });
});

describe("the admin port's bare 500 when node refuses an error's head", () => {
  let admin: AdminServer;
  const TOKEN = 'review7-token';

  before(async () => {
    admin = await startAdminServer('127.0.0.1', 0, {
      logger: pino({ level: 'silent' }),
      metrics: new GatewayMetrics(() => [], { defaultMetrics: false }),
      backends: () => [],
      readiness: [],
      dashboard: loadDashboard(),
      token: TOKEN,
      // The users API's place: an error whose header node refuses (a control character), answered mid-upload.
      identityRoutes: async (req: IncomingMessage, res: ServerResponse) => {
        leaveBody(req, res);
        sendAdminError(res, new GatewayError('BAD_REQUEST', { headers: { 'x-note': 'refused\u0001value' } }));
        return true;
      },
    });
  });

  after(async () => {
    await admin?.close();
  });

  test('keeps the security headers and the Connection: close of an answer given mid-upload', async () => {
    const served = await rawRequest(admin.port, GET_READY);
    assert.equal(served.status, 200);
    const socket = await openSocket(admin.port);
    socket.on('error', () => undefined);
    try {
      // The upload's head only: its body is still to come when the answer is given.
      socket.write(`POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1000\r\n\r\n`);
      const data = (await readUntil(socket, (d) => d.includes('\r\n\r\n'))).toString('latin1');
      const answer = parseHead(data.slice(0, data.indexOf('\r\n\r\n')));
      assert.equal(answer.status, 500);
      assert.equal(answer.headers['x-note'], undefined);
      assert.equal(answer.headers.connection, 'close');
      assertSameSecurityHeaders(answer, served, 'the bare 500');
    } finally {
      socket.destroy();
    }
  });
});
