// What was wrong: for a HEAD, a route that takes it only through its GET yields to a later route that "lists HEAD
// itself" (README, Precedence), but the matcher also let it yield to a later route with no `methods` at all. So with
// a protected `methods: [GET]` route first and, on the same path, a route told apart by a header condition (auth off,
// another service) after it, GET with that header took the protected route (file order) while HEAD with it took the
// open one: `HEAD /admin/report` + `X-Client: kiosk` ran the backend's GET handler with no token and returned its
// status and headers, the bypass the HEAD-as-GET rule exists to close. `portcullis routes --match` said the same.
// What is right now: only a route whose `methods` name HEAD goes before a route taking HEAD through GET; a route
// without `methods` keeps its file order, so HEAD lands where GET lands (over HTTP/1.1 and in routes --match).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, runCli, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

let admin: TestBackend;
let kiosk: TestBackend;
let probe: TestBackend;
let gw: InProcessGateway;

function config(): Record<string, unknown> {
  const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }] });
  return {
    services: { admin: svc(admin), kiosk: svc(kiosk), probe: svc(probe) },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'admin-read', match: { path_prefix: '/admin', methods: ['GET'] }, service: 'admin', auth: 'required' },
      { name: 'kiosk', match: { path_prefix: '/admin', headers: { 'x-client': 'kiosk' } }, service: 'kiosk', auth: 'off' },
      { name: 'probe-head', match: { path_prefix: '/probe', headers: { 'x-client': 'kiosk' } }, service: 'kiosk', auth: 'off' },
      { name: 'probe-head-listed', match: { path_prefix: '/probe', methods: ['HEAD'] }, service: 'probe', auth: 'off' },
    ],
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
  };
}

before(async () => {
  [admin, kiosk, probe] = await Promise.all([startBackend('admin'), startBackend('kiosk'), startBackend('probe')]);
  gw = await startInProcess(config());
});
after(async () => {
  await gw?.close();
  await Promise.all([admin?.stop(), kiosk?.stop(), probe?.stop()]);
});

function send(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; backend: unknown }> {
  const port = Number(new URL(gw.url).port);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: res.headers['x-backend'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HEAD with the header lands where GET with it lands: the protected GET route, not the later header route', async () => {
  const get = await send('GET', '/admin/report', { 'x-client': 'kiosk' });
  assert.deepEqual(get, { status: 401, backend: undefined });
  const head = await send('HEAD', '/admin/report', { 'x-client': 'kiosk' });
  assert.deepEqual(head, { status: 401, backend: undefined }, 'no backend reached without a token');
});

test('a route listing HEAD itself still goes first for a HEAD', async () => {
  assert.deepEqual(await send('HEAD', '/probe/x', { 'x-client': 'kiosk' }), { status: 200, backend: 'probe' });
  assert.deepEqual(await send('GET', '/probe/x', { 'x-client': 'kiosk' }), { status: 200, backend: 'kiosk' });
});

test('portcullis routes --match agrees', async () => {
  const file = writeConfig(config());
  const result = await runCli(['routes', '--config', file, '--match', 'HEAD /admin/report', '-H', 'X-Client: kiosk']);
  assert.match(result.stdout, /^route: admin-read /m, result.stdout + result.stderr);
});
