// The listener's certificates: loaded at start-up, swapped whole on reload, chosen per handshake by SNI.
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ServerTlsConfig } from '../config/schema.js';
import { EVENTS } from '../observability/events.js';
import { ConfigError } from '../config/config-error.js';
import { loadCertificate, SERVER_SECURE_OPTIONS, type LoadedCertificate, type TlsPolicy } from './certificate.js';
import { cipherListProblem } from './ciphers.js';
import { pickCertificate } from './sni.js';

/** One certificate as /api/status shows it. */
export interface CertificateStatus {
  readonly cert_file: string;
  readonly names: readonly string[];
  readonly not_after: string;
  /** Seconds until expiry at the time of the call (negative once expired). */
  readonly expires_in_s: number;
}

/** True when `tls` turns TLS on for the proxy listener (cert_file and key_file both set). */
export function tlsEnabled(tls: ServerTlsConfig): boolean {
  return tls.cert_file !== '' && tls.key_file !== '';
}

/** server.tls's policy; throws ConfigError for a cipher list OpenSSL refuses. */
function policyOf(tls: ServerTlsConfig): TlsPolicy {
  const problem = cipherListProblem(tls.ciphers);
  if (problem !== undefined) throw new ConfigError(`server.tls.ciphers: ${problem}`);
  return { minVersion: tls.min_version, ciphers: tls.ciphers };
}

/**
 * Loads server.tls.cert_file/key_file, then each of server.tls.certificates, in that order (the first is the
 * default), each with server.tls's policy (checked first); then checks that they share one key type.
 */
export function loadAll(tls: ServerTlsConfig, now: number = Date.now()): LoadedCertificate[] {
  const policy = policyOf(tls);
  const list = [loadCertificate(tls.cert_file, tls.key_file, 'server.tls', policy, now)];
  tls.certificates.forEach((pair, i) => {
    list.push(loadCertificate(pair.cert_file, pair.key_file, `server.tls.certificates.${i}`, policy, now));
  });
  oneKeyType(list);
  return list;
}

/** How a key type reads in a message. */
const KEY_TYPE_NAMES: Readonly<Record<string, string>> = { rsa: 'RSA', 'rsa-pss': 'RSA-PSS', ec: 'ECDSA', ed25519: 'Ed25519', ed448: 'Ed448', dsa: 'DSA' };

/**
 * Every certificate must have a key of the default certificate's type (ECDSA keys of any curve are one type). node
 * serves an SNI certificate by adding its key to the connection beside the default certificate's, in the slot of
 * its key type (UseSNIContext: SSL_use_certificate), without removing the default's; OpenSSL then signs with
 * whichever slot the handshake prefers. With an ECDSA default and an RSA certificate for `rsa.example`, every client
 * that accepts ECDSA (every browser) was sent the default certificate for `rsa.example`, over TLS 1.3 and 1.2 alike,
 * and failed its name check. node offers no way to take the default's key off the connection, so a set it cannot
 * serve is refused (check-config, start, reload), not served to the wrong names.
 */
function oneKeyType(list: readonly LoadedCertificate[]): void {
  const first = list[0]!;
  list.forEach((c, i) => {
    if (i === 0 || c.keyType === first.keyType) return;
    const name = (type: string): string => KEY_TYPE_NAMES[type] ?? type;
    throw new ConfigError(
      `server.tls.certificates.${i - 1}.key_file: the key type of ${c.keyFile} is ${name(c.keyType)}, of server.tls.key_file ${name(first.keyType)}: ` +
        `every certificate needs a key of one type (node keeps the default certificate's key beside the one SNI picks, and a client asking for ${c.names[0] ?? c.certFile} may be sent the default certificate)`,
    );
  });
}

/**
 * One warning per certificate file lacking its intermediate (chain-check.ts), at start-up and at each reload that
 * loads it: the gateway serves it, and clients that do not hold the intermediate fail their handshakes.
 */
export function warnIncompleteChains(certificates: readonly LoadedCertificate[], logger: Pick<Logger, 'warn'>): void {
  for (const c of certificates) {
    if (c.missingIssuer === undefined) continue;
    logger.warn(
      { cert_file: c.certFile, missing_issuer: c.missingIssuer, fix: "append the issuer's certificate after the server's own (a CA's fullchain.pem)" },
      EVENTS.certificateChainIncomplete,
    );
  }
}

/**
 * Holds the current certificates. The SNI callback reads the current list on every handshake, so a reload is
 * seen by the next handshake while established connections keep the certificate they negotiated.
 */
export class CertificateStore {
  #certificates: readonly LoadedCertificate[];
  #policy: TlsPolicy;

  /** Throws ConfigError (one line) when a file is unreadable, a key does not match or a certificate expired or is not valid yet. */
  constructor(tls: ServerTlsConfig) {
    this.#certificates = loadAll(tls);
    this.#policy = policyOf(tls);
  }

  get certificates(): readonly LoadedCertificate[] {
    return this.#certificates;
  }

  /** Options of the tls.Server (its default certificate answers clients that send no SNI). */
  serverOptions(): SecureContextOptions & { SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
    const first = this.#certificates[0]!;
    return {
      cert: first.cert,
      key: first.key,
      minVersion: this.#policy.minVersion,
      ciphers: this.#policy.ciphers,
      secureOptions: SERVER_SECURE_OPTIONS,
      SNICallback: this.sniCallback,
    };
  }

  /** Called by node during each handshake that carries SNI. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, pickCertificate(this.#certificates, servername).context);
  };

  /**
   * Loads `tls`'s files afresh (they may have been replaced on disk with the same names). Returns a commit function
   * that installs them, or throws ConfigError and changes nothing; so a reload can check everything first.
   */
  prepare(tls: ServerTlsConfig): () => SecureContextOptions {
    const next = loadAll(tls);
    const policy = policyOf(tls);
    return () => {
      this.#certificates = next;
      this.#policy = policy;
      return this.serverOptions();
    };
  }

  /** Names and expiry of each certificate, for /api/status and the dashboard. */
  describe(now: number = Date.now()): CertificateStatus[] {
    return this.#certificates.map((c) => ({
      cert_file: c.certFile,
      names: c.names,
      not_after: c.notAfter.toISOString(),
      expires_in_s: Math.floor((c.notAfter.getTime() - now) / 1000),
    }));
  }
}
