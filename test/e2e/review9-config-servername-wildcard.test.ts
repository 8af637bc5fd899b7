// An upstream group's tls.servername written as its certificate's wildcard name (`*.svc.test`, a certificate issued
// for `*.svc.test` alone): node verifies that name against the certificate's identical SAN, and SNI routing that
// matches by suffix (nginx's `server_name *.svc.test`) takes it, so requests were answered. 33acc90 read servername
// as a host name, which a `*` label is not, and refused it: check-config and start stopped on a config that served.
// A leading `*.` label is taken again; anything else 33acc90 refuses (a port, a scheme, a `*` elsewhere) still is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { checkConfigVerdict, configErrorOf } from '../helpers/config-error.js';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const pki = pkiDir();
const ca = createTestCa('Review9 servername wildcard CA', pki.path);
const wildcard = ca.issue('*.svc.test', { stem: 'wildcard', san: ['DNS:*.svc.test'] });

let upstream: Server | undefined;
let upstreamPort = 0;
const seenSni: Array<string | undefined> = [];
let gateway: GatewayProcess | undefined;

before(async () => {
  upstream = createServer({ cert: wildcard.cert, key: wildcard.key }, (req, res) => {
    seenSni.push((req.socket as unknown as { servername?: string }).servername);
    res.end('from-upstream');
  });
  await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', () => resolve()));
  upstreamPort = (upstream.address() as AddressInfo).port;
});
after(async () => {
  await gateway?.cleanup();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream === undefined ? resolve() : upstream.close(() => resolve())));
  pki.remove();
});

const text = (servername: string, port = upstreamPort): string => `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: ${port}}]
  tls: {enabled: true, ca_file: ${ca.caFile}, servername: '${servername}'}
`;

test("servername '*.svc.test' against a certificate for *.svc.test: check-config ok, start serves, the name verified", async () => {
  const path = join(pki.path, 'wildcard.yaml');
  writeFileSync(path, text('*.svc.test'));
  assert.equal(await checkConfigVerdict(path, {}, pki.path), 'ok');
  gateway = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: pki.path, timeoutMs: 12_000 });
  const res = await fetch(`${gateway.url}/x`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'from-upstream');
  assert.deepEqual(seenSni, ['*.svc.test']);
});

test('a * anywhere but a whole leading label is still refused', () => {
  for (const servername of ['*', '*.', 'a*.svc.test', 'api.*.svc.test', '*.*.svc.test', '*svc.test', '*.svc.test:443']) {
    assert.match(configErrorOf(text(servername, 1)), /^load_balancing\.tls\.servername: /, servername);
  }
});
