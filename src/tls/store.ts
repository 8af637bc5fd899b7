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
 * default), each with server.tls's policy (checked first).
 */
export function loadAll(tls: ServerTlsConfig, now: number = Date.now()): LoadedCertificate[] {
  const policy = policyOf(tls);
  const list = [loadCertificate(tls.cert_file, tls.key_file, 'server.tls', policy, now)];
  tls.certificates.forEach((pair, i) => {
    list.push(loadCertificate(pair.cert_file, pair.key_file, `server.tls.certificates.${i}`, policy, now));
  });
  return list;
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
