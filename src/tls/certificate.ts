// Loads one certificate chain and its key from PEM files and checks them: readable, a certificate, the key matches, not
// expired, already valid. Every failure is a one-line ConfigError naming the config key and the file.
import { X509Certificate, constants as cryptoConstants, createPrivateKey, type KeyObject } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { ConfigError } from '../config/load.js';
import { readRegularFile, UnreadableFile } from '../config/regular-file.js';
import { nodeTls } from '../node-builtins.js';
import { missingIssuer } from './chain-check.js';

/** A certificate ready to serve, with what the dashboard and metrics show about it. */
export interface LoadedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** SAN DNS names (lower-case), used for SNI; the subject CN when the certificate has no SAN. */
  readonly names: readonly string[];
  /** End of validity of the leaf certificate. */
  readonly notAfter: Date;
  /** The PEM texts, for tls.Server.setSecureContext (the default certificate). */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The context handed out by the SNI callback. */
  readonly context: SecureContext;
  /** The intermediate's name when the file lacks it (chain-check.ts): warned of at start-up and reload. */
  readonly missingIssuer: string | undefined;
  /** The private key's type as node names it (`rsa`, `rsa-pss`, `ec`, `ed25519`, ...): see store.ts's oneKeyType. */
  readonly keyType: string;
}

/**
 * How far ahead of this host's clock a certificate's notBefore may lie and still be loaded: 5 minutes. A certificate
 * that an ACME client installs seconds after its CA issued it, on a host whose clock runs a little behind the CA's,
 * is valid to every client with a right clock and must not be refused. A notBefore further ahead is a certificate
 * that clients refuse until then: every handshake would fail, so it is refused as an expired one is.
 */
export const NOT_BEFORE_TOLERANCE_MS = 5 * 60_000;

/**
 * OpenSSL options of every context the listener serves with (the default one and each SNI one): no renegotiation.
 * node's TLS servers accept a client-initiated TLS 1.2 renegotiation (3 in 10 minutes per connection), a full
 * handshake with its private-key operation on a connection already held, outside the handshake bound and the
 * per-client cap (CVE-2011-1473's handshake CPU exhaustion; nginx refuses them all, RFC 9113 §9.2.1 forbids it over
 * HTTP/2). The gateway never asks for a client certificate, so it has no use for one.
 */
export const SERVER_SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** The TLS floor, as `min_version` spells it. */
export type MinTlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** What every context of the listener shares besides its certificate: `server.tls.min_version` and `.ciphers`. */
export interface TlsPolicy {
  readonly minVersion: MinTlsVersion;
  readonly ciphers: string;
}

/**
 * The most a certificate chain or key file may hold: a chain with a whole CA bundle appended is a few hundred KB.
 * A bound, so that a path naming something endless (a device) is refused rather than read until memory runs out.
 */
export const MAX_PEM_BYTES = 1024 * 1024;

/**
 * A PEM file's bytes, read as the config file is (regular-file.ts): opened without waiting, a regular file only (or
 * a symlink to one), at most MAX_PEM_BYTES. A blocking read of a FIFO with no writer stopped the event loop for
 * good: a reload froze the whole gateway, start and check-config hung.
 */
function readPem(file: string, key: string): Buffer {
  try {
    return readRegularFile(file, MAX_PEM_BYTES, 'larger than 1 MiB');
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${file} (${err instanceof UnreadableFile ? err.why : 'unreadable'})`);
  }
}

/** DNS names of a certificate's subjectAltName ("DNS:a, DNS:*.b, IP Address:1.2.3.4"); IP entries are listed as-is. */
export function sanNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san) {
    const names: string[] = [];
    for (const entry of san.split(', ')) {
      if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
      else if (entry.startsWith('IP Address:')) names.push(entry.slice(11));
    }
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
  return cn ? [cn[1]!.toLowerCase()] : [];
}

/**
 * Why a certificate cannot be presented at `now` ("expired on <date>", "is not valid before <date>"), or undefined:
 * the one rule for the listener's certificates and the client certificates the gateway presents (an upstream's mTLS
 * certificate, PostgreSQL's sslcert), which a peer that checks dates refuses alike. A notBefore up to
 * NOT_BEFORE_TOLERANCE_MS ahead is accepted.
 */
export function validityProblem(x509: X509Certificate, now: number = Date.now()): string | undefined {
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= now) return `expired on ${notAfter.toISOString()}`;
  const notBefore = new Date(x509.validFrom);
  if (notBefore.getTime() > now + NOT_BEFORE_TOLERANCE_MS) return `is not valid before ${notBefore.toISOString()}`;
  return undefined;
}

/**
 * Reads and checks `certFile` + `keyFile`. `configKey` is the key path for messages ("server.tls" or
 * "server.tls.certificates.1"). Throws ConfigError for an unreadable file, a file that is not a PEM certificate or
 * key, a key that does not belong to the certificate, a certificate that has expired at `now`, or one that is not
 * valid until more than NOT_BEFORE_TOLERANCE_MS after `now`.
 */
export function loadCertificate(
  certFile: string,
  keyFile: string,
  configKey: string,
  policy: TlsPolicy,
  now: number = Date.now(),
): LoadedCertificate {
  const cert = readPem(certFile, `${configKey}.cert_file`);
  const key = readPem(keyFile, `${configKey}.key_file`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert); // the first certificate of the chain: the leaf
  } catch {
    throw new ConfigError(`${configKey}.cert_file: ${certFile} is not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`${configKey}.key_file: ${keyFile} is not a PEM private key (or it is encrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    // A chain written intermediate first (some bundling tools do) was told as a key that does not match: the key
    // matches a later certificate of the file, which clients would need first.
    const at = laterCertificateMatching(cert, privateKey);
    if (at !== undefined) {
      throw new ConfigError(`${configKey}.cert_file: ${certFile} must begin with the certificate of ${keyFile} (it is certificate ${at} of the file): the server's own certificate comes first, then its chain`);
    }
    throw new ConfigError(`${configKey}.key_file: ${keyFile} does not match the certificate in ${certFile}`);
  }
  const invalid = validityProblem(x509, now);
  if (invalid !== undefined) throw new ConfigError(`${configKey}.cert_file: ${certFile} ${invalid}`);
  const notAfter = new Date(x509.validTo);
  let context: SecureContext;
  try {
    context = nodeTls().createSecureContext({ cert, key, minVersion: policy.minVersion, ciphers: policy.ciphers, secureOptions: SERVER_SECURE_OPTIONS });
  } catch (err) {
    throw new ConfigError(`${configKey}.cert_file: ${certFile} cannot be used (${(err as { code?: string }).code ?? 'invalid'})`);
  }
  return {
    certFile,
    keyFile,
    names: sanNames(x509),
    notAfter,
    cert,
    key,
    context,
    missingIssuer: missingIssuer(cert, x509),
    keyType: privateKey.asymmetricKeyType ?? 'unknown',
  };
}

/** The 1-based position of the certificate after the first in a PEM file that `key` belongs to, if any. */
function laterCertificateMatching(pem: Buffer, key: KeyObject): number | undefined {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (let i = 1; i < blocks.length; i++) {
    try {
      if (new X509Certificate(blocks[i]!).checkPrivateKey(key)) return i + 1;
    } catch {
      // not a certificate node reads: not the one
    }
  }
  return undefined;
}
