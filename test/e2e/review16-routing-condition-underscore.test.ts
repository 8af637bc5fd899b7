// What was wrong: a route's `match.headers` condition read its header in the spelling the route names it by alone,
// but the gateway forwarded every other spelling. CGI, WSGI (Python's wsgiref) and Rack servers read `X_Api_Version`
// as HTTP_X_API_VERSION, the same variable as `X-Api-Version`. A client sending `X_Api_Version: 2` skipped the
// `x-api-version: 2` route with `auth: required`, took the open catch-all, and its backend served the protected
// version to no token.
// What is right now: a client's copy of a condition header in another `_`/`-` spelling is dropped, as owned headers
// are: routing never read it, and no backend sees it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

let api: TestBackend;
let gw: InProcessGateway;

before(async () => {
  api = await startBackend('api');
  const service = { upstreams: [{ name: 'api', address: '127.0.0.1', port: api.port }] };
  gw = await startInProcess({
    services: { api: service },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'api-v2', match: { path_prefix: '/api', headers: { 'x-api-version': '2' } }, service: 'api', auth: 'required' },
      { name: 'api', match: { path_prefix: '/api' }, service: 'api', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
    admin: { enabled: false },
  });
});
after(async () => {
  await gw?.close();
  await api?.stop();
});

async function get(headerLine: string): Promise<{ status: number; body: string }> {
  const port = Number(new URL(gw.url).port);
  return rawRequest(port, `GET /api/x HTTP/1.1\r\nHost: gw\r\n${headerLine}\r\nConnection: close\r\n\r\n`);
}

test('the condition header in its own spelling takes the protected route', async () => {
  assert.equal((await get('X-Api-Version: 2')).status, 401);
});

test('another spelling of it takes the open route, and never reaches the backend', async () => {
  for (const line of ['X_Api_Version: 2', 'x_api-version: 2', 'X-Api_Version: 2']) {
    const res = await get(line);
    assert.equal(res.status, 200, line);
    const seen = (JSON.parse(res.body) as EchoBody).headers;
    for (const name of Object.keys(seen)) assert.ok(!/^x.api.version$/.test(name), `${line}: ${name} reached the backend`);
  }
});

test('a header no route decides on keeps its underscores', async () => {
  const res = await get('X_Trace_Tag: t1');
  assert.equal((JSON.parse(res.body) as EchoBody).headers.x_trace_tag, 't1');
});
