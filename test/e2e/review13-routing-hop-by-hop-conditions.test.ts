// Header conditions read a request's headers as its upstream will (README, Routes). A header the request's own
// Connection header names is hop-by-hop (RFC 9110 §7.6.1) and the gateway drops it on the way upstream, but routing
// still read it: `x-api-version: 2` named in Connection took the v2 route, whose upstream never got the header.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { runCli, startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [v1, v2] = await Promise.all([startBackend('v1'), startBackend('v2')]);
const service = (port: number) => ({ upstreams: [{ name: 'u', address: '127.0.0.1', port }], health_check: { enabled: false } });
const gw = await startInProcess({
  services: { v1: service(v1.port), v2: service(v2.port) },
  routes: [
    { name: 'users-v2', match: { path_prefix: '/users', headers: { 'x-api-version': '2' } }, service: 'v2' },
    { name: 'internal', match: { path_prefix: '/in', headers: { host: 'admin.internal' } }, service: 'v2' },
    { name: 'rest', match: { path_prefix: '/' }, service: 'v1' },
  ],
});
after(async () => {
  await gw.close();
  await Promise.all([v1.stop(), v2.stop()]);
});

const port = Number(new URL(gw.url).port);

async function send(path: string, lines: string[], host = 'api.test'): Promise<EchoBody> {
  const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body) as EchoBody;
}

test('a header the Connection header names is absent to route conditions, as it is to the upstream', async () => {
  for (const connection of ['close, x-api-version', 'x-api-version, close', 'close, X-API-Version', 'close, , x-api-version']) {
    const echo = await send('/users/1', [`Connection: ${connection}`, 'X-API-Version: 2']);
    assert.equal(echo.backend, 'v1', `Connection: ${connection}`);
    assert.equal(echo.headers['x-api-version'], undefined, 'not forwarded either');
  }
  // A second Connection line counts as well (the lines join as one list).
  const twoLines = await send('/users/1', ['Connection: close', 'Connection: x-api-version', 'X-API-Version: 2']);
  assert.equal(twoLines.backend, 'v1');
});

test('a condition on a header that is never forwarded is a config error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-review13-hop-config-'));
  try {
    for (const name of ['keep-alive', 'connection', 'transfer-encoding', 'expect', 'proxy-authorization']) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        `admin: {enabled: false}\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\nroutes:\n  - {name: r, service: default, match: {path_prefix: /, headers: {${name}: x}}}\n`,
      );
      const result = await runCli(['check-config', '--config', file]);
      assert.equal(result.code, 1, name);
      assert.match(result.stderr, new RegExp(`routes\\[0\\]\\.match\\.headers: "${name}" is a hop-by-hop header`), result.stderr);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same header not named in Connection still takes its route, and reaches its upstream', async () => {
  const echo = await send('/users/1', ['Connection: close', 'X-API-Version: 2']);
  assert.equal(echo.backend, 'v2');
  assert.equal(echo.headers['x-api-version'], '2');
});

test('Host named in Connection still takes its route: the upstream gets the Host all the same', async () => {
  // Hidden from the conditions, it skipped the host route (and its auth) while the upstream still got the Host.
  for (const connection of ['close, host', 'host, close', 'close, Host']) {
    const echo = await send('/in/x', [`Connection: ${connection}`], 'admin.internal');
    assert.equal(echo.backend, 'v2', `Connection: ${connection}`);
    assert.equal(echo.headers.host, 'admin.internal');
  }
});

test('portcullis routes --match reads the headers as the gateway does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-review13-hop-'));
  try {
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      'admin: {enabled: false}\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\nroutes:\n' +
        '  - {name: users-v2, service: default, match: {path_prefix: /users, headers: {x-api-version: "2"}}}\n' +
        '  - {name: internal, service: default, match: {path_prefix: /, headers: {host: admin.internal}}}\n' +
        '  - {name: rest, service: default, match: {path_prefix: /}}\n',
    );
    const named = await runCli(['routes', '--config', file, '--match', 'GET /users/1', '-H', 'Connection: x-api-version', '-H', 'X-API-Version: 2']);
    assert.match(named.stdout, /^route: rest /m, named.stdout);
    const plain = await runCli(['routes', '--config', file, '--match', 'GET /users/1', '-H', 'X-API-Version: 2']);
    assert.match(plain.stdout, /^route: users-v2 /m, plain.stdout);
    const host = await runCli(['routes', '--config', file, '--match', 'GET http://admin.internal/x', '-H', 'Connection: host']);
    assert.match(host.stdout, /^route: internal /m, host.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
