// server.tls.certificates with keys of another type than the default certificate's. node serves an SNI certificate
// by adding its key to the connection beside the default's, in its key type's slot, and OpenSSL signs with the slot
// the handshake prefers: with an ECDSA default, a client asking for the name of an RSA certificate was sent the
// default certificate, over TLS 1.3 and 1.2, and failed its name check. Such a set is now refused by check-config,
// start and reload; keys of one type, ECDSA on two curves among them, are each served for their own names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { runCli, spawnGateway, writeConfig } from '../helpers/gateway.js';
import { httpsGet } from '../helpers/h2.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let ecDefault: IssuedCertificate;
let rsaOther: IssuedCertificate;
let rsaDefault: IssuedCertificate;
let ecOther: IssuedCertificate;
let p384Other: IssuedCertificate;

before(() => {
  ca = createTestCa('Key Type CA', pki.path);
  ecDefault = ca.issue('default.test', { san: ['DNS:default.test', 'IP:127.0.0.1'] });
  rsaOther = ca.issue('rsa.test', { key: 'rsa' });
  rsaDefault = ca.issue('rsa-default.test', { key: 'rsa', san: ['DNS:rsa-default.test', 'IP:127.0.0.1'] });
  ecOther = ca.issue('ec.test');
  p384Other = ca.issue('p384.test', { key: 'ec-p384' });
});
after(() => pki.remove());

function configWith(tls: Record<string, unknown>): string {
  return writeConfig({ server: { tls }, load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] } });
}

const pair = (c: IssuedCertificate) => ({ cert_file: c.certFile, key_file: c.keyFile });

/** Exit code 1 and one stderr line, the config error naming the certificate, both key types and the name at risk. */
function assertRefused(result: { code: number | null; stderr: string }, file: string, types: string, name: string): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, new RegExp(`^portcullis: config error: server\\.tls\\.certificates\\.0\\.key_file: the key type of .*${file} is ${types}: every certificate needs a key of one type .*${name.replace('.', '\\.')}`));
}

test('an ECDSA default with an RSA certificate: check-config and start refuse it in one line', async () => {
  const config = configWith({ ...pair(ecDefault), certificates: [pair(rsaOther)] });
  assertRefused(await runCli(['check-config', '--config', config]), 'rsa\\.test\\.key', 'RSA, of server\\.tls\\.key_file ECDSA', 'rsa.test');
  assertRefused(await runCli(['start', '--config', config]), 'rsa\\.test\\.key', 'RSA, of server\\.tls\\.key_file ECDSA', 'rsa.test');
});

test('an RSA default with an ECDSA certificate is refused too', async () => {
  const config = configWith({ ...pair(rsaDefault), certificates: [pair(ecOther)] });
  assertRefused(await runCli(['check-config', '--config', config]), 'ec\\.test\\.key', 'ECDSA, of server\\.tls\\.key_file RSA', 'ec.test');
});

/** The common name of the certificate a TLS handshake with SNI `servername` is served, verified against the CA. */
function servedName(port: number, servername: string, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca: ca.ca, maxVersion }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.end();
    });
    socket.once('error', reject);
  });
}

test('ECDSA keys on two curves are one type: each name gets its own certificate; a reload to a mixed set is rejected', async () => {
  const live = { cert: join(pki.path, 'live.pem'), key: join(pki.path, 'live.key') };
  const install = (from: string, to: string) => {
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  };
  install(p384Other.certFile, live.cert);
  install(p384Other.keyFile, live.key);
  const gw = await spawnGateway({
    server: { tls: { ...pair(ecDefault), certificates: [{ cert_file: live.cert, key_file: live.key }] } },
    load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] },
  });
  try {
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      assert.equal(await servedName(gw.port, 'p384.test', version), 'p384.test', version);
      assert.equal(await servedName(gw.port, 'default.test', version), 'default.test', version);
    }
    // The second certificate replaced on disk by an RSA one: the reload is rejected, the P-384 one still served.
    install(rsaOther.certFile, live.cert);
    install(rsaOther.keyFile, live.key);
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected'), 'Config Rejected', 10_000);
    const rejected = gw.logs.find((l) => l.msg === 'Config Rejected')!;
    assert.match(String(rejected.reason), /^server\.tls\.certificates\.0\.key_file: the key type of .*live\.key is RSA, of server\.tls\.key_file ECDSA: every certificate needs a key of one type/);
    assert.equal(await servedName(gw.port, 'p384.test', 'TLSv1.3'), 'p384.test');
    assert.equal((await httpsGet(gw.port, ca.ca, 'default.test', '/health')).status, 200);
  } finally {
    await gw.cleanup();
  }
});
