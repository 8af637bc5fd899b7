// No client can set a header the gateway owns, in any spelling, on public or protected paths; a trusted proxy's
// forwarding headers still pass.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

/** Spellings a client might try, all with a value the backend must never see. */
const SPOOFED: Record<string, string> = {
  'X-User-Id': 'victim',
  X_User_Id: 'victim',
  'X-User_Email': 'victim@example.com',
  X_USER_EMAIL: 'victim@example.com',
  'X-Consumer-Id': 'spoof',
  X_Consumer_Name: 'spoof',
  X_Request_Id: 'spoof',
  'X-Proxy-By': 'spoof',
  X_Forwarded_For: '6.6.6.6',
  'X_Forwarded-Proto': 'https',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Prefix': '/admin',
  X_Forwarded_Host: 'evil.example',
  Forwarded: 'for=6.6.6.6;proto=https;host=evil.example',
  'X-Real-IP': '6.6.6.6',
  X_Real_Ip: '6.6.6.6',
  'X-Original-URL': '/admin',
  'X-Rewrite-URL': '/admin',
};

/** Header lines for a raw request (undici would refuse nothing here, but raw keeps the exact spelling). */
function headerLines(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

function assertNoSpoof(seen: EchoBody['headers'], where: string): void {
  for (const [name, value] of Object.entries(seen)) {
    const text = String(value);
    assert.ok(!/victim|spoof|6\.6\.6\.6|evil\.example|\/admin|https/.test(text), `${where}: ${name}: ${text} reached the backend`);
    assert.ok(!name.includes('_'), `${where}: ${name} reached the backend`);
  }
  for (const name of ['forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url', 'x-forwarded-port', 'x-forwarded-prefix', 'x-consumer-id', 'x-consumer-name', 'x-proxy-by']) {
    assert.equal(seen[name], undefined, `${where}: ${name}`);
  }
}

describe('auth on, untrusted client', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ auth: { public_paths: ['/public/*'] } });
  });
  after(() => stack.close());

  test('on a public path every spelling of an owned header is dropped', async () => {
    const { res, upstream } = await proxiedGet(stack, '/public/page', SPOOFED);
    assert.equal(res.status, 200);
    assertNoSpoof(upstream!, 'public');
    assert.equal(upstream!['x-user-id'], undefined);
    assert.equal(upstream!['x-forwarded-for'], '127.0.0.1');
    assert.equal(upstream!['x-forwarded-proto'], 'http');
  });

  test('on a protected path the identity headers are the verified user, never the client spelling', async () => {
    const user = await register(stack);
    const { res, upstream } = await proxiedGet(stack, '/orders', { ...SPOOFED, ...bearer(user.access_token) });
    assert.equal(res.status, 200);
    assert.equal(upstream!['x-user-id'], user.user_id);
    assert.equal(upstream!['x-user-email'], user.email);
    assertNoSpoof(upstream!, 'protected');
  });

  test('raw spellings node keeps apart (underscores, mixed case) are dropped too', async () => {
    const port = Number(new URL(stack.url).port);
    const res = await rawRequest(port, `GET /public/raw HTTP/1.1\r\nHost: gw\r\n${headerLines(SPOOFED)}x_user_id: victim\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 200);
    assertNoSpoof((JSON.parse(res.body) as EchoBody).headers, 'raw');
  });
});

describe('trusted proxy in front', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  before(async () => {
    backend = await startBackend('echo');
    gw = await startInProcess({
      server: { trusted_proxies: ['127.0.0.1'] },
      load_balancing: { upstreams: upstreams([backend.port]) },
      admin: { enabled: false },
    });
  });
  after(async () => {
    await gw.close();
    await backend.stop();
  });

  test('correctly spelled forwarding headers pass and the chain is extended; identity and underscore spellings do not', async () => {
    const port = Number(new URL(gw.url).port);
    const trustedHeaders = {
      'X-Forwarded-For': '203.0.113.9',
      'X-Forwarded-Port': '443',
      Forwarded: 'for=203.0.113.9',
      'X-Real-IP': '203.0.113.9',
    };
    const res = await rawRequest(
      port,
      `GET /x HTTP/1.1\r\nHost: gw\r\n${headerLines(trustedHeaders)}X_Forwarded_For: 6.6.6.6\r\nX-User-Id: victim\r\nX_User_Id: victim\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 200);
    const seen = (JSON.parse(res.body) as EchoBody).headers;
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen['x-forwarded-port'], '443');
    assert.equal(seen.forwarded, 'for=203.0.113.9');
    assert.equal(seen['x-real-ip'], '203.0.113.9');
    assert.equal(seen['x-user-id'], undefined);
    for (const name of Object.keys(seen)) assert.ok(!name.includes('_'), name);
  });
});
