// A listen host that is not an address of this machine: check-config said ok, and start stopped with node's bare
// "portcullis: Error: EADDRNOTAVAIL listen EADDRNOTAVAIL: address not available 192.0.2.1:8080", naming no key.
// Members: server.listen_host and admin.listen_host an IPv4 or IPv6 address no interface has, a link-local IPv6
// address without its %interface (EINVAL). Now check-config asks the kernel (a bind on port 0, closed at once) and
// both give one line naming the key; an address the kernel takes though no interface lists it (127.0.0.2, an
// IPv4-mapped loopback) is ok to both. A port another process holds is a question of the moment: check-config says
// ok, start gives one line naming the port's key (before: node's text, no key).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigVerdict, startVerdict } from '../helpers/config-error.js';
import { startProcess } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review9-listen-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The first of the documentation addresses (RFC 5737, RFC 3849) no interface here has: only ever bound, never sent to. */
function notLocal(candidates: readonly string[]): string {
  const local = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  const found = candidates.find((address) => !local.has(address));
  assert.ok(found !== undefined, 'a documentation address this host does not have');
  return found;
}
const V4 = notLocal(['192.0.2.1', '198.51.100.1', '203.0.113.1']);
const V6 = notLocal(['2001:db8::1', '2001:db8::2', '2001:db8::3']);
const TOKEN = 'review9-admin-token-0123456789';

let files = 0;
function configFile(server: string, admin: string): string {
  const path = join(dir, `config-${++files}.yaml`);
  writeFileSync(
    path,
    `server: {${server}}
admin: {${admin}}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 1}]
`,
  );
  return path;
}

const verdicts = async (path: string): Promise<[string, string]> => [await checkConfigVerdict(path, {}, dir), await startVerdict(path, {}, dir)];

test('a listen host no interface of this machine has: check-config and start give the same one line naming the key', async () => {
  const port = await freePort();
  const adminPort = await freePort();
  const cases: Array<[string, string, string]> = [
    [
      `listen_host: ${V4}, listen_port: ${port}`,
      'listen_host: 127.0.0.1, listen_port: 0',
      `server.listen_host: cannot listen on ${V4}:${port} (EADDRNOTAVAIL: no interface of this host has that address)`,
    ],
    [
      `listen_host: '${V6}', listen_port: ${port}`,
      'listen_host: 127.0.0.1, listen_port: 0',
      `server.listen_host: cannot listen on [${V6}]:${port} (EADDRNOTAVAIL: no interface of this host has that address)`,
    ],
    // A multi-worker gateway: each worker meets it alike, so the primary prints it once and gives up.
    [
      `listen_host: ${V4}, listen_port: ${port}, workers: 2`,
      'enabled: false',
      `server.listen_host: cannot listen on ${V4}:${port} (EADDRNOTAVAIL: no interface of this host has that address)`,
    ],
    [
      'listen_host: 127.0.0.1, listen_port: 0',
      `listen_host: ${V4}, listen_port: ${adminPort}, token: ${TOKEN}`,
      `admin.listen_host: cannot listen on ${V4}:${adminPort} (EADDRNOTAVAIL: no interface of this host has that address)`,
    ],
    [
      `listen_host: 'fe80::1', listen_port: ${port}`,
      'enabled: false',
      `server.listen_host: cannot listen on [fe80::1]:${port} (EINVAL: this host cannot listen on that address as written)`,
    ],
  ];
  for (const [server, admin, reason] of cases) {
    const [checked, started] = await verdicts(configFile(server, admin));
    assert.equal(checked, `portcullis: config error: ${reason}`, `check-config, ${server} / ${admin}`);
    assert.equal(started, `portcullis: config error: ${reason}`, `start, ${server} / ${admin}`);
  }
});

test('addresses the kernel binds though no interface lists them are ok to check-config and start alike', async () => {
  for (const host of ['127.0.0.2', "'::ffff:127.0.0.1'"]) {
    const [checked, started] = await verdicts(configFile(`listen_host: ${host}, listen_port: 0`, 'listen_host: 127.0.0.1, listen_port: 0'));
    assert.equal(checked, 'ok', `check-config, ${host}`);
    assert.equal(started, 'ok', `start, ${host}`);
  }
});

test('a port another process holds: check-config says ok (a question of the moment), start names the port key in one line', async () => {
  const held: Server = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  after(() => held.close());
  const port = (held.address() as AddressInfo).port;
  const proxy = configFile(`listen_host: 127.0.0.1, listen_port: ${port}`, 'listen_host: 127.0.0.1, listen_port: 0');
  assert.deepEqual(await verdicts(proxy), [
    'ok',
    `portcullis: server.listen_port: cannot listen on 127.0.0.1:${port} (EADDRINUSE: another process listens there)`,
  ]);
  const admin = configFile('listen_host: 127.0.0.1, listen_port: 0', `listen_host: 127.0.0.1, listen_port: ${port}`);
  assert.deepEqual(await verdicts(admin), [
    'ok',
    `portcullis: admin.listen_port: cannot listen on 127.0.0.1:${port} (EADDRINUSE: another process listens there)`,
  ]);
});

test('a privileged port without CAP_NET_BIND_SERVICE: start names the port key in one line, with what it needs', async () => {
  // Root without the capability (dropped from the bounding set before exec), as a non-root service meets it.
  const path = configFile('listen_host: 127.0.0.1, listen_port: 81', 'enabled: false');
  const started = await startProcess('setpriv', ['--bounding-set=-net_bind_service', process.execPath, join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, {
    cwd: dir,
    timeoutMs: 12_000,
  }).then(
    async (gw) => {
      await gw.cleanup();
      return 'ok';
    },
    (err: Error) => err.message,
  );
  assert.equal(started, 'gateway exited with 1: portcullis: server.listen_port: cannot listen on 127.0.0.1:81 (EACCES: permission denied, a port below 1024 needs CAP_NET_BIND_SERVICE)\n');
});
