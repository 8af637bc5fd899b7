// An upstream's mTLS client certificate expired, or not valid yet, was loaded without a word by check-config, start
// and reload, while the listener's certificates are refused for it (README, Security notes, "Certificates:"); an
// upstream that checks client certificates then refused every handshake: each request a 502. Now the listener's rule
// holds for both, with the key and the date: check-config and start give the same one line, and a reload to it is
// refused, the running config (and its certificate) kept. Members: load_balancing expired, a service's not valid yet;
// and a key OpenSSL refuses to use (RSA 512: EE_KEY_TOO_SMALL), which the listener's check catches and this did not.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { checkConfigVerdict, startVerdict } from '../helpers/config-error.js';
import { startProcess } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const pki = pkiDir();
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  pki.remove();
});

const ca = createTestCa('Review9 client cert CA', pki.path);
const serverCert = ca.issue('127.0.0.1', { san: ['IP:127.0.0.1'] });
ca.issue('gateway', { stem: 'valid' }); // valid.pem, valid.key: the certificate that works
const expired = ca.issue('gateway', { stem: 'expired', expired: true });
const notYet = ca.issue('gateway', { stem: 'not-yet', validity: { notBefore: '20300101000000Z', notAfter: '20300401000000Z' } });
// A 512-bit RSA key, signed by the CA: a certificate and key that match, valid now, which OpenSSL refuses to use.
for (const args of [
  ['genrsa', '-out', 'weak.key', '512'],
  ['req', '-new', '-key', 'weak.key', '-subj', '/CN=gateway', '-out', 'weak.csr'],
  ['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'weak.csr', '-out', 'weak.pem', '-days', '1'],
]) {
  execFileSync('openssl', args, { cwd: ca.dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** An HTTPS upstream that asks for a client certificate of the CA and refuses a handshake without one. */
async function mtlsBackend(): Promise<number> {
  const server = createServer({ cert: serverCert.cert, key: serverCert.key, ca: ca.ca, requestCert: true, rejectUnauthorized: true }, (_req, res) => res.end('mtls ok'));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

let files = 0;
function configText(port: number, lb: string, billing: string): string {
  const tls = (client: string) => `{enabled: true, ca_file: ${ca.caFile}, cert_file: ${join(ca.dir, `${client}.pem`)}, key_file: ${join(ca.dir, `${client}.key`)}}`;
  return `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: true, listen_host: 127.0.0.1, listen_port: 0}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: ${port}}]
  tls: ${tls(lb)}
services:
  billing:
    health_check: {enabled: false}
    upstreams: [{name: b, address: 127.0.0.1, port: ${port}}]
    tls: ${tls(billing)}
routes:
  - {name: billing, match: {path_prefix: /billing}, service: billing}
  - {name: root, match: {path_prefix: /}, service: default}
`;
}
function configFile(text: string): string {
  const path = join(pki.path, `config-${++files}.yaml`);
  writeFileSync(path, text);
  return path;
}

const EXPIRED = `load_balancing.tls.cert_file: ${expired.certFile} expired on 2020-01-02T00:00:00.000Z`;
const NOT_YET = `services.billing.tls.cert_file: ${notYet.certFile} is not valid before 2030-01-01T00:00:00.000Z`;

test('an expired or not yet valid upstream client certificate: one line naming the key from check-config and start', async () => {
  const port = await mtlsBackend();
  const cases: Array<[string, string, string]> = [
    ['expired', 'valid', `portcullis: config error: ${EXPIRED}`],
    ['valid', 'not-yet', `portcullis: config error: ${NOT_YET}`],
    ['weak', 'valid', `portcullis: config error: load_balancing.tls.cert_file: ${join(ca.dir, 'weak.pem')} cannot be used (ERR_SSL_EE_KEY_TOO_SMALL)`],
    ['valid', 'valid', 'ok'],
  ];
  for (const [lb, billing, verdict] of cases) {
    const path = configFile(configText(port, lb, billing));
    assert.equal(await checkConfigVerdict(path, {}, pki.path), verdict, `check-config, ${lb}/${billing}`);
    assert.equal(await startVerdict(path, {}, pki.path), verdict, `start, ${lb}/${billing}`);
  }
});

test('a reload to an expired or not yet valid client certificate is refused, and the running one keeps serving', async () => {
  const port = await mtlsBackend();
  const path = configFile(configText(port, 'valid', 'valid'));
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: pki.path });
  closers.push(() => gw.cleanup());
  const get = async (target: string): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${gw.port}${target}`);
    return `${res.status} ${await res.text()}`;
  };
  assert.equal(await get('/'), '200 mtls ok');
  assert.equal(await get('/billing'), '200 mtls ok');
  for (const [lb, billing, reason] of [['expired', 'valid', EXPIRED], ['valid', 'not-yet', NOT_YET]] as const) {
    writeFileSync(`${path}.next`, configText(port, lb, billing));
    execFileSync('mv', [`${path}.next`, path]);
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
    const body = (await res.json()) as { reason?: string };
    assert.equal(res.status === 200 ? 'ok' : body.reason, reason, `reload, ${lb}/${billing}`);
    // The running config and its certificate still serve both groups.
    assert.equal(await get('/'), '200 mtls ok');
    assert.equal(await get('/billing'), '200 mtls ok');
  }
  // SIGHUP alike: one Config Rejected line saying why, and the running certificate serves on.
  writeFileSync(`${path}.next`, configText(port, 'expired', 'valid'));
  execFileSync('mv', [`${path}.next`, path]);
  // The two refused POSTs' lines first (a line may arrive after its answer), then the SIGHUP's.
  const rejected = () => gw.logs.filter((l) => l.msg === 'Config Rejected');
  await waitFor(() => rejected().length === 2, "the refused POSTs' Config Rejected lines");
  gw.signal('SIGHUP');
  await waitFor(() => rejected().length === 3, 'the SIGHUP reload to be rejected');
  assert.equal(rejected()[2]?.reason, EXPIRED);
  assert.equal(await get('/'), '200 mtls ok');
});
