// What was wrong: a route's `match.headers.host` condition compared the Host as spelt. `ADMIN.example.com`,
// `admin.example.com.` and `admin.example.com:<port>` name the host the condition names (the Host check accepts them,
// `match.hosts` folds them, virtual-host backends serve them as one), yet each skipped the route and its
// `auth: required`, falling through to an open catch-all that forwarded the admin Host to the same backend.
// `portcullis routes --match` agreed with that, and with a bare path it ignored `-H Host` for `hosts` routes.
// What is right now: a host condition is compared as a host (lower case, no port, one trailing dot dropped), the
// config refuses one that could only be read literally (a port, a wildcard), and routes --match routes by -H Host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { configErrorOf } from '../helpers/config-error.js';
import { runPortcullis } from '../helpers/identity.js';

const ROUTES = [
  { name: 'admin-vhost', match: { headers: { host: 'Admin.Example.com.' } }, service: 'vhosts', auth: 'required' },
  { name: 'internal', match: { hosts: ['internal.example.com'], path_prefix: '/w' }, service: 'vhosts', auth: 'required' },
  { name: 'everything-else', match: { path_prefix: '/' }, service: 'vhosts', auth: 'off' },
] as const;
const CONFIG = {
  services: {} as Record<string, unknown>,
  jwt: { secret: TEST_SECRET },
  routes: ROUTES,
  middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
};

describe('a host condition compared as a host', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  before(async () => {
    backend = await startBackend('vhosts');
    CONFIG.services = { vhosts: { upstreams: [{ name: 'v', address: '127.0.0.1', port: backend.port }] } };
    gw = await startInProcess(CONFIG);
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
  });

  test('every spelling of the host takes the guarded route (401, no backend reached); another host does not', async () => {
    const port = gw.gateway.port;
    const get = (host: string) => rawRequest(port, `GET /secret-report HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    for (const host of ['admin.example.com', 'ADMIN.example.com', 'Admin.Example.Com', 'admin.example.com.', `admin.example.com:${port}`, 'ADMIN.EXAMPLE.COM.:80']) {
      const res = await get(host);
      assert.equal(res.status, 401, `Host: ${host} skipped the guarded route: ${res.status} ${res.body}`);
      assert.equal(res.headers['x-backend'], undefined, host);
    }
    for (const host of ['admin.example.com.evil', 'xadmin.example.com', 'www.example.com']) {
      const res = await get(host);
      assert.equal(res.status, 200, host);
      assert.equal(res.headers['x-backend'], 'vhosts', host);
    }
  });
});

test('a host condition with a port or a wildcard is a config error naming match.hosts', () => {
  const with_ = (value: string) =>
    configErrorOf(`services: { a: { upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }] } }\nroutes:\n  - { name: r, service: a, match: { headers: { Host: "${value}" } } }\n`);
  assert.match(with_('admin.example.com:8443'), /routes\[0\]\.match\.headers\.host: .*without a port.*match\.hosts/);
  assert.match(with_('*.example.com'), /routes\[0\]\.match\.headers\.host: names one host: .*match\.hosts/);
  assert.match(with_('admin example'), /routes\[0\]\.match\.headers\.host: must be a host name/);
});

test('two routes whose host conditions differ only in spelling are one condition: a config error', () => {
  const message = configErrorOf(
    'services: { a: { upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }] } }\nroutes:\n' +
      '  - { name: one, service: a, match: { headers: { host: api.example.com } } }\n' +
      '  - { name: two, service: a, match: { headers: { host: API.example.com. } } }\n',
  );
  assert.match(message, /routes\[1\].*one/);
});

test('routes --match routes by the host of -H Host with a bare path, and agrees with the gateway on its spellings', async () => {
  const configFile = writeConfig({ ...CONFIG, services: { vhosts: { upstreams: [{ name: 'v', address: '127.0.0.1', port: 3000 }] } } });
  const match = async (spec: string, ...headers: string[]) => {
    const run = await runPortcullis(['routes', '--config', configFile, '--match', spec, ...headers.flatMap((h) => ['-H', h])]);
    return run;
  };
  const routeOf = (stdout: string) => /^route: (\S+)/m.exec(stdout)?.[1];
  let run = await match('GET /w/x', 'Host: internal.example.com');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(routeOf(run.stdout), 'internal', run.stdout);
  run = await match('GET /secret-report', 'Host: ADMIN.example.com:8080');
  assert.equal(routeOf(run.stdout), 'admin-vhost', run.stdout);
  run = await match('GET http://admin.example.com./secret-report');
  assert.equal(routeOf(run.stdout), 'admin-vhost', run.stdout);
  // Two different hosts: which one the operator meant is theirs to say.
  run = await match('GET http://a.example.com/x', 'Host: b.example.com');
  assert.equal(run.code, 2, run.stdout);
  assert.match(run.stderr, /name the host once/);
  // Two -H Host lines, the same or not: a request the gateway refuses (400), not one routed by the first.
  for (const second of ['Host: admin.example.com', 'Host: internal.example.com']) {
    run = await match('GET /secret-report', 'Host: admin.example.com', second);
    assert.equal(run.code, 3, run.stdout);
    assert.match(run.stdout, /refused before routing: the gateway answers 400 bad_request \(invalid Host: more than one Host header\)/);
  }
});
