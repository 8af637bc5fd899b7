// A trusted proxy's forwarding header with an empty value (`X-Forwarded-For:`, `X-Forwarded-Proto:`,
// `X-Forwarded-Host:`) says nothing, and must not be passed on as if it did. Before, the backend got
// `X-Forwarded-For: , 127.0.0.1` (an empty first hop: Express and Rails read the client as ""), and an empty
// `X-Forwarded-Proto` and `X-Forwarded-Host` in place of the gateway's own `http` and the request's host (a backend
// that redirects plain HTTP to HTTPS loops). A real value from the proxy still passes, and an untrusted peer's is
// still replaced.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

const backend = await startBackend('echo');
const gw = await startInProcess({
  server: { trusted_proxies: ['127.0.0.1'] },
  services: { echo: { upstreams: [{ name: 'echo', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
  routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'echo', auth: 'off' }],
});
const port = Number(new URL(gw.url).port);
after(async () => {
  await gw.close();
  await backend.stop();
});

/** The headers the backend saw for a GET from 127.0.0.1 (the trusted proxy) with `lines` as extra header lines. */
async function seen(lines: string): Promise<EchoBody['headers']> {
  const res = await rawRequest(port, `GET /echo HTTP/1.1\r\nHost: app.example\r\n${lines}Connection: close\r\n\r\n`);
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as EchoBody).headers;
}

test('an empty X-Forwarded-For from a trusted proxy is no hop: the chain is the peer alone', async () => {
  assert.equal((await seen('X-Forwarded-For:\r\n'))['x-forwarded-for'], '127.0.0.1');
  assert.equal((await seen('X-Forwarded-For:   \r\n'))['x-forwarded-for'], '127.0.0.1');
  // A real chain is still extended.
  assert.equal((await seen('X-Forwarded-For: 198.51.100.7\r\n'))['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
});

test('an empty X-Forwarded-Proto or X-Forwarded-Host from a trusted proxy gives way to the gateway own', async () => {
  const empty = await seen('X-Forwarded-Proto:\r\nX-Forwarded-Host: \r\n');
  assert.equal(empty['x-forwarded-proto'], 'http');
  assert.equal(empty['x-forwarded-host'], 'app.example');
  const real = await seen('X-Forwarded-Proto: https\r\nX-Forwarded-Host: www.example\r\n');
  assert.equal(real['x-forwarded-proto'], 'https');
  assert.equal(real['x-forwarded-host'], 'www.example');
});
