// What was wrong: a route's `methods` took any letters, so `methods: [TRACE]`, `[CONNECT]` or a method node's parser
// does not know (`[FOO]`, `[BREW]`) loaded, yet no such request could ever reach the route: the gateway answers TRACE
// and CONNECT 405 before routing and an unknown method 501 (README, Errors). The route sat in `portcullis routes`
// and the admin status as if it served them, and its requests got 405/501 with nothing saying why.
// What is right now: such a method in a route's `methods` is a config error naming the key and the reason, as a
// non-canonical `path` is; every method the gateway forwards (PURGE, QUERY, PROPFIND, ... in any case) still loads,
// and a request of one of them reaches its route over a real socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { configErrorOf } from '../helpers/config-error.js';

const routeWith = (methods: string[]) =>
  'services:\n  a: {upstreams: [{name: a1, address: 127.0.0.1, port: 9001}]}\n' +
  `routes:\n  - {name: r, service: a, match: {methods: [${methods.join(', ')}]}}\n`;

test('TRACE and CONNECT, refused before routing, are a config error in a route', () => {
  for (const method of ['TRACE', 'CONNECT', 'trace']) {
    assert.equal(
      configErrorOf(routeWith(['GET', method])),
      `routes[0].match.methods[1]: ${method.toUpperCase()} never reaches a route: the gateway answers it 405 before routing`,
    );
  }
});

test('a method the gateway does not know is a config error in a route', () => {
  assert.equal(
    configErrorOf(routeWith(['BREW'])),
    'routes[0].match.methods[0]: BREW is not a method the gateway forwards (it answers 501 to it): see http.METHODS of Node.js',
  );
});

let backend: TestBackend;
let gw: InProcessGateway;
before(async () => {
  backend = await startBackend('b');
  gw = await startInProcess({
    services: { b: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name: 'cache', match: { methods: ['purge', 'QUERY', 'PROPFIND', 'GET'] }, service: 'b' }],
  });
});
after(async () => {
  await gw?.close();
  await backend?.stop();
});

test('every method the gateway forwards still loads and reaches its route', async () => {
  const port = Number(new URL(gw.url).port);
  for (const method of ['PURGE', 'QUERY', 'PROPFIND', 'GET', 'HEAD']) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path: '/x' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200, method);
  }
});
