// Certificates that cannot be served stop start-up (and check-config) with one config-error line, and a reload to
// them is rejected: an expired or not yet valid certificate, a key that belongs to another certificate, a missing file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, spawnGateway, writeConfig } from '../helpers/gateway.js';
import { httpsGet } from '../helpers/h2.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let good: IssuedCertificate;
let other: IssuedCertificate;
let expired: IssuedCertificate;
/** Valid from 2030-01-01: a certificate every client refuses until then. */
let future: IssuedCertificate;
let ca: TestCa;

before(() => {
  ca = createTestCa('Config CA', pki.path);
  good = ca.issue('good.test');
  other = ca.issue('other.test');
  expired = ca.issue('old.test', { expired: true });
  future = ca.issue('future.test', { validity: { notBefore: '20300101000000Z', notAfter: '20300401000000Z' } });
});
after(() => pki.remove());

function configWith(tls: Record<string, unknown>): string {
  return writeConfig({ server: { tls }, load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] } });
}

/** Asserts exit code 1 and exactly one stderr line, matching `pattern`. */
function assertOneLine(result: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
}

test('an expired certificate is refused at start-up with one line', async () => {
  const result = await runCli(['start', '--config', configWith({ cert_file: expired.certFile, key_file: expired.keyFile })]);
  assertOneLine(result, /^portcullis: config error: server\.tls\.cert_file: .*old\.test\.pem expired on 2020-01-02T00:00:00\.000Z$/);
});

test('a key that does not match its certificate is refused, in server.tls.certificates too', async () => {
  const first = await runCli(['check-config', '--config', configWith({ cert_file: good.certFile, key_file: other.keyFile })]);
  assertOneLine(first, /^portcullis: config error: server\.tls\.key_file: .*other\.test\.key does not match the certificate in .*good\.test\.pem$/);
  const listed = await runCli([
    'check-config',
    '--config',
    configWith({ cert_file: good.certFile, key_file: good.keyFile, certificates: [{ cert_file: other.certFile, key_file: good.keyFile }] }),
  ]);
  assertOneLine(listed, /^portcullis: config error: server\.tls\.certificates\.0\.key_file: .* does not match the certificate/);
});

// stop 54: a chain written intermediate first was refused as "key_file ... does not match", pointing at the key.
test('a chain file whose own certificate is not first says so, naming where it is', async () => {
  const reversed = join(pki.path, 'reversed-chain.pem');
  writeFileSync(reversed, Buffer.concat([ca.ca, good.cert]));
  const result = await runCli(['check-config', '--config', configWith({ cert_file: reversed, key_file: good.keyFile })]);
  assertOneLine(result, /^portcullis: config error: server\.tls\.cert_file: .*reversed-chain\.pem must begin with the certificate of .*good\.test\.key \(it is certificate 2 of the file\)/);
  // In the right order, the same two certificates load.
  const ordered = join(pki.path, 'ordered-chain.pem');
  writeFileSync(ordered, Buffer.concat([good.cert, ca.ca]));
  const ok = await runCli(['check-config', '--config', configWith({ cert_file: ordered, key_file: good.keyFile })]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('a missing file and a half-configured pair are config errors', async () => {
  const missing = await runCli(['check-config', '--config', configWith({ cert_file: join(pki.path, 'nope.pem'), key_file: good.keyFile })]);
  assertOneLine(missing, /^portcullis: config error: server\.tls\.cert_file: cannot read .*nope\.pem \(ENOENT\)$/);
  const half = await runCli(['check-config', '--config', configWith({ cert_file: good.certFile })]);
  assertOneLine(half, /^portcullis: config error: server\.tls: cert_file and key_file must be set together$/);
});

test('a certificate not valid before 2030 is refused by check-config and start-up with one line giving the date', async () => {
  // check-config first: were the certificate accepted, `start` would serve (and never exit) rather than fail.
  const checked = await runCli([
    'check-config',
    '--config',
    configWith({ cert_file: good.certFile, key_file: good.keyFile, certificates: [{ cert_file: future.certFile, key_file: future.keyFile }] }),
  ]);
  assertOneLine(checked, /^portcullis: config error: server\.tls\.certificates\.0\.cert_file: .*future\.test\.pem is not valid before 2030-01-01T00:00:00\.000Z$/);
  const started = await runCli(['start', '--config', configWith({ cert_file: future.certFile, key_file: future.keyFile })]);
  assertOneLine(started, /^portcullis: config error: server\.tls\.cert_file: .*future\.test\.pem is not valid before 2030-01-01T00:00:00\.000Z$/);
});

test('a reload to a certificate not valid yet is rejected, and handshakes keep getting the one in use', async () => {
  const live = { cert: join(pki.path, 'live.pem'), key: join(pki.path, 'live.key') };
  const install = (from: string, to: string) => {
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  };
  const served = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'served' });
  const notYet = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'not-yet', validity: { notBefore: '20300101000000Z', notAfter: '20300401000000Z' } });
  install(served.certFile, live.cert);
  install(served.keyFile, live.key);
  const gw = await spawnGateway({ server: { tls: { cert_file: live.cert, key_file: live.key } }, load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] } });
  try {
    const before = await httpsGet(gw.port, ca.ca, 'a.test', '/health');
    assert.equal(before.status, 200);
    install(notYet.certFile, live.cert);
    install(notYet.keyFile, live.key);
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected'), 'Config Rejected', 10_000);
    const rejected = gw.logs.find((l) => l.msg === 'Config Rejected')!;
    assert.match(String(rejected.reason), /^server\.tls\.cert_file: .*live\.pem is not valid before 2030-01-01T00:00:00\.000Z$/);
    assert.ok(!gw.logs.some((l) => l.msg === 'Certificates Reloaded'));
    // A new handshake still gets the certificate in use, and completes (with the 2030 one, every handshake failed).
    const afterReload = await httpsGet(gw.port, ca.ca, 'a.test', '/health');
    assert.equal(afterReload.status, 200);
    assert.equal(afterReload.cert.serialNumber, before.cert.serialNumber);
  } finally {
    await gw.cleanup();
  }
});
