// loadCertificate's validity window: expired and not-yet-valid certificates are refused with the date, and a
// notBefore only minutes ahead of this host's clock (an ACME certificate issued seconds ago, a clock a little behind)
// is not.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../config/config-error.js';
import { createTestCa, opensslTime, pkiDir } from '../../test/helpers/tls.js';
import { loadCertificate, NOT_BEFORE_TOLERANCE_MS, type TlsPolicy } from './certificate.js';
import { DEFAULT_TLS12_CIPHERS } from './ciphers.js';

const POLICY: TlsPolicy = { minVersion: 'TLSv1.2', ciphers: DEFAULT_TLS12_CIPHERS };

const pki = pkiDir();
after(() => pki.remove());
const ca = createTestCa('Validity CA', pki.path);

test('a certificate valid from 2030 is refused, the message giving the date', () => {
  const future = ca.issue('future.test', { validity: { notBefore: '20300101000000Z', notAfter: '20300201000000Z' } });
  assert.throws(
    () => loadCertificate(future.certFile, future.keyFile, 'server.tls.certificates.0', POLICY),
    (err: unknown) =>
      err instanceof ConfigError &&
      /^server\.tls\.certificates\.0\.cert_file: .*future\.test\.pem is not valid before 2030-01-01T00:00:00\.000Z$/.test(err.message),
  );
});

test('a notBefore within the tolerance of this clock loads; one just past it does not', () => {
  const start = new Date('2031-06-01T12:00:00Z');
  const cert = ca.issue('soon.test', { validity: { notBefore: opensslTime(start), notAfter: '20310701000000Z' } });
  const load = (now: number) => loadCertificate(cert.certFile, cert.keyFile, 'server.tls', POLICY, now);
  // This host's clock 10 s, then exactly the tolerance behind the issuer's: loaded.
  assert.deepEqual(load(start.getTime() - 10_000).names, ['soon.test']);
  assert.equal(load(start.getTime() - NOT_BEFORE_TOLERANCE_MS).notAfter.toISOString(), '2031-07-01T00:00:00.000Z');
  assert.throws(() => load(start.getTime() - NOT_BEFORE_TOLERANCE_MS - 1_000), /soon\.test\.pem is not valid before 2031-06-01T12:00:00\.000Z$/);
  assert.equal(NOT_BEFORE_TOLERANCE_MS, 5 * 60_000, 'README says 5 minutes');
});

test('a certificate just issued by a CA whose clock is 30 s ahead of this one loads', () => {
  const cert = ca.issue('fresh.test', { validity: { notBefore: opensslTime(new Date(Date.now() + 30_000)), notAfter: opensslTime(new Date(Date.now() + 86_400_000)) } });
  assert.deepEqual(loadCertificate(cert.certFile, cert.keyFile, 'server.tls', POLICY).names, ['fresh.test']);
});

test('an expired certificate is still refused with its date', () => {
  const old = ca.issue('old.test', { expired: true });
  assert.throws(() => loadCertificate(old.certFile, old.keyFile, 'server.tls', POLICY), /old\.test\.pem expired on 2020-01-02T00:00:00\.000Z$/);
});
