// What was wrong: at `logging.level: debug` a request no route took was logged with why each route refused it, and
// each verdict copied the request's path ("r7: path /aaaa… is not under /p7"). A 15 KB path against 50 routes wrote
// a 767 KB line per 404, so any client could fill the disk of a gateway an operator had put on debug.
// What is right now: the path and host are logged once; the verdicts name the condition ("path is not under /p7"),
// and list the first 20 routes tried, then how many more.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

let backend: TestBackend;
let gw: InProcessGateway;
before(async () => {
  backend = await startBackend('app');
  gw = await startInProcess({
    logging: { level: 'debug', access_log: false },
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] } },
    routes: Array.from({ length: 50 }, (_, i) => ({ name: `r${i}`, match: { path_prefix: `/p${i}` }, service: 'app' })),
  });
});
after(async () => {
  await gw?.close();
  await backend?.stop();
});

test('a long path that no route takes is logged once, with a bounded list of verdicts', async () => {
  const path = `/${'a'.repeat(15_000)}`;
  const res = await rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n`);
  assert.equal(res.status, 404);
  const line = gw.logs.find((l) => l.msg === 'Route Not Found');
  assert.ok(line, 'a Route Not Found line');
  assert.equal(line.path, path);
  const size = JSON.stringify(line).length;
  assert.ok(size < path.length + 3_000, `the line holds the path more than once: ${size} bytes`);
  const tried = line.tried as string[];
  assert.equal(tried.length, 21, JSON.stringify(tried.slice(-3)));
  assert.equal(tried[0], 'r0: path is not under /p0');
  assert.equal(tried[20], 'and 30 more routes');
});

test('a short 404 still says why each of a few routes passed', async () => {
  const res = await rawRequest(gw.gateway.port, 'GET /nowhere HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 404);
  const line = gw.logs.filter((l) => l.msg === 'Route Not Found').at(-1)!;
  assert.equal(line.path, '/nowhere');
  assert.equal(line.host, 'gw.test');
  assert.ok((line.tried as string[]).includes('r49: path is not under /p49') === false, 'past the first 20');
  assert.ok((line.tried as string[]).includes('r19: path is not under /p19'));
});
