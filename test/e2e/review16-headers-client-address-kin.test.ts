// What was wrong: the gateway dropped a client's X-Forwarded-*, Forwarded and X-Real-IP, but passed the other headers
// by which a CDN names the client's address to its backend: True-Client-IP (Akamai, Cloudflare), CF-Connecting-IP,
// Fastly-Client-IP, X-Client-IP, X-Cluster-Client-IP and their kin. A backend configured to believe its CDN's header
// (npm's request-ip reads all of them) logged, allow-listed or rate-limited whatever address a client wrote there,
// and a route condition on one was taken by any client that sent it.
// What is right now: they are forwarding headers like X-Real-IP: dropped from a client in any spelling, passed from a
// peer in server.trusted_proxies in their standard spelling; a condition on one holds only behind a trusted proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

/** Several members of the family, some in spellings CGI-style backends fold together; every value a forgery. */
const FORGED: Record<string, string> = {
  'True-Client-IP': '6.6.6.6',
  'CF-Connecting-IP': '6.6.6.6',
  'Fastly-Client-IP': '6.6.6.6',
  'X-Client-IP': '6.6.6.6',
  X_Cluster_Client_IP: '6.6.6.6',
  'Client-IP': '6.6.6.6',
  'X-Forwarded': 'for=6.6.6.6',
  'X-Envoy-External-Address': '6.6.6.6',
};

function headerLines(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

let monitor: TestBackend;
let app: TestBackend;

function config(trusted: readonly string[]): Record<string, unknown> {
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  return {
    server: { trusted_proxies: trusted },
    services: { monitor: svc(monitor), app: svc(app) },
    routes: [
      { name: 'app', match: { path_prefix: '/' }, service: 'app' },
      // An internal monitor reached only when the CDN says the client is the office's address.
      { name: 'monitor', match: { path_prefix: '/', headers: { 'true-client-ip': '10.0.0.5' } }, service: 'monitor' },
    ],
    admin: { enabled: false },
  };
}

async function get(gw: InProcessGateway, headers: Record<string, string>): Promise<{ status: number; body: EchoBody }> {
  const port = Number(new URL(gw.url).port);
  const res = await rawRequest(port, `GET /x HTTP/1.1\r\nHost: gw\r\n${headerLines(headers)}Connection: close\r\n\r\n`);
  return { status: res.status, body: JSON.parse(res.body) as EchoBody };
}

before(async () => {
  [monitor, app] = await Promise.all([startBackend('monitor'), startBackend('app')]);
});
after(async () => {
  await Promise.all([monitor?.stop(), app?.stop()]);
});

test('a condition on one with no trusted proxy at all is a config error: it could never hold', async () => {
  await assert.rejects(startInProcess(config([])), /routes\[1\]\.match\.headers: "true-client-ip" is read only from a trusted proxy, and server\.trusted_proxies is empty/);
});

describe('client-address headers of CDNs', () => {
  let open: InProcessGateway;
  let behindProxy: InProcessGateway;
  before(async () => {
    [open, behindProxy] = await Promise.all([startInProcess(config(['192.0.2.1'])), startInProcess(config(['127.0.0.1']))]);
  });
  after(async () => {
    await Promise.all([open?.close(), behindProxy?.close()]);
  });

  test('from a client that is no trusted proxy, none reaches the backend, in any spelling', async () => {
    const { status, body } = await get(open, FORGED);
    assert.equal(status, 200);
    for (const [name, value] of Object.entries(body.headers)) {
      assert.ok(!String(value).includes('6.6.6.6'), `${name}: ${String(value)} reached the backend`);
    }
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
  });

  test('from a client, a condition on one reads it as absent: the route is not taken', async () => {
    const { body } = await get(open, { 'True-Client-IP': '10.0.0.5' });
    assert.equal(body.backend, app.name);
    assert.equal(body.headers['true-client-ip'], undefined);
  });

  test('from a trusted proxy, the standard spellings pass and the condition holds; an underscore spelling never passes', async () => {
    const { body } = await get(behindProxy, { 'True-Client-IP': '10.0.0.5', 'CF-Connecting-IP': '203.0.113.9', X_Client_IP: '6.6.6.6' });
    assert.equal(body.backend, monitor.name);
    assert.equal(body.headers['true-client-ip'], '10.0.0.5');
    assert.equal(body.headers['cf-connecting-ip'], '203.0.113.9');
    assert.equal(body.headers.x_client_ip, undefined);
  });
});

// From the fix's review: the gateway never writes these headers, so a route rewrite (or a plugin) may: one that
// feeds a CDN-minded backend the address the gateway saw, or strips a trusted CDN's copy for one backend.
test('a route rewrite may set or remove one: a client\'s copy is dropped first, the rewrite then applies', async () => {
  const svc = { upstreams: [{ name: app.name, address: '127.0.0.1', port: app.port }] };
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'] },
    services: { app: svc },
    routes: [
      { name: 'set', match: { path_prefix: '/set' }, service: 'app', request_headers: { set: { 'True-Client-IP': '10.1.1.1' } } },
      { name: 'strip', match: { path_prefix: '/strip' }, service: 'app', request_headers: { remove: ['CF-Connecting-IP'] } },
    ],
    admin: { enabled: false },
  });
  try {
    const port = Number(new URL(gw.url).port);
    const set = await rawRequest(port, 'GET /set HTTP/1.1\r\nHost: gw\r\nTrue-Client-IP: 6.6.6.6\r\nConnection: close\r\n\r\n');
    assert.equal((JSON.parse(set.body) as EchoBody).headers['true-client-ip'], '10.1.1.1');
    const strip = await rawRequest(port, 'GET /strip HTTP/1.1\r\nHost: gw\r\nCF-Connecting-IP: 203.0.113.9\r\nConnection: close\r\n\r\n');
    assert.equal((JSON.parse(strip.body) as EchoBody).headers['cf-connecting-ip'], undefined);
  } finally {
    await gw.close();
  }
});
