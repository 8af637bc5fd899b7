// Certificates that cannot be served stop start-up (and check-config) with one config-error line: an expired
// certificate, a key that belongs to another certificate, a missing file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, writeConfig } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type IssuedCertificate } from '../helpers/tls.js';

const pki = pkiDir();
let good: IssuedCertificate;
let other: IssuedCertificate;
let expired: IssuedCertificate;

before(() => {
  const ca = createTestCa('Config CA', pki.path);
  good = ca.issue('good.test');
  other = ca.issue('other.test');
  expired = ca.issue('old.test', { expired: true });
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

test('a missing file and a half-configured pair are config errors', async () => {
  const missing = await runCli(['check-config', '--config', configWith({ cert_file: join(pki.path, 'nope.pem'), key_file: good.keyFile })]);
  assertOneLine(missing, /^portcullis: config error: server\.tls\.cert_file: cannot read .*nope\.pem \(ENOENT\)$/);
  const half = await runCli(['check-config', '--config', configWith({ cert_file: good.certFile })]);
  assertOneLine(half, /^portcullis: config error: server\.tls: cert_file and key_file must be set together$/);
});
