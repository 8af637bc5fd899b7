// How the gateway talks to an upstream group: TLS (CA, SNI, verification, client certificate) and HTTP/2, as undici
// pool options, and why a TLS handshake with an upstream failed. One place for both, used by every group.
import { constants as cryptoConstants, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type * as Undici from 'undici';
import type { Pool } from 'undici';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import { readRegularFile, UnreadableFile } from '../config/regular-file.js';
import type { UpstreamTlsConfig } from '../config/schema.js';
import { EVENTS } from '../observability/events.js';
import { nodeTls } from '../node-builtins.js';
import { validityProblem } from '../tls/certificate.js';
import { markConnectError } from './upstream-error.js';

/** The transport keys of an upstream group (load_balancing, or a service): `tls` and `http2`. */
export interface UpstreamGroupTransport {
  readonly tls: UpstreamTlsConfig;
  readonly http2: boolean;
}

/** A group's transport with its PEM files read, built once per config (not per backend or per connection). */
export interface UpstreamTransport {
  readonly scheme: 'http' | 'https';
  readonly http2: boolean;
  readonly verify: boolean;
  readonly servername: string | undefined;
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
}

/** The most an upstream CA bundle or client certificate file may hold, as for the listener's (tls/certificate.ts). */
const MAX_PEM_BYTES = 1024 * 1024;

/**
 * A PEM file's bytes, read as the listener's certificates are (regular-file.ts): a regular file only, opened without
 * waiting, at most 1 MiB. readFileSync of a FIFO with no writer blocked the event loop for good (a reload froze the
 * gateway, start and check-config hung).
 */
function readPem(file: string, key: string): Buffer | undefined {
  if (file === '') return undefined;
  try {
    return readRegularFile(file, MAX_PEM_BYTES, 'larger than 1 MiB');
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${file} (${err instanceof UnreadableFile ? err.why : 'unreadable'})`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Refuses a CA file that holds no certificate, or one that does not parse. Node takes any bytes as `ca` and trusts
 * nothing from them: every request was a 502 upstream_tls logged "unknown CA", after a start, check-config or
 * reload that said nothing. Text between certificates (a bundle's labels) is ignored, as OpenSSL ignores it.
 */
function checkCaFile(ca: Buffer, file: string, key: string): void {
  const blocks = ca.toString('latin1').match(PEM_CERTIFICATE);
  if (blocks === null) throw new ConfigError(`${key}: ${file} holds no PEM certificate`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new ConfigError(`${key}: ${file} holds a PEM certificate that does not parse`);
    }
  }
}

/**
 * Refuses a client certificate and key that cannot be used together, or a certificate expired or not yet valid, with
 * the listener's messages: each request failed in the connector or the handshake (a 502 with no line saying why)
 * after a start or reload that said nothing.
 */
function checkClientCertificate(cert: Buffer, key: Buffer, certFile: string, keyFile: string, keyPath: string): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new ConfigError(`${keyPath}.tls.cert_file: ${certFile} is not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`${keyPath}.tls.key_file: ${keyFile} is not a PEM private key (or it is encrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new ConfigError(`${keyPath}.tls.key_file: ${keyFile} does not match the certificate in ${certFile}`);
  // The listener's rule (tls/certificate.ts): an upstream that checks client certificates refuses an expired or not
  // yet valid one in every handshake, a 502 upstream_tls on every request after a start or reload that said nothing.
  const invalid = validityProblem(x509);
  if (invalid !== undefined) throw new ConfigError(`${keyPath}.tls.cert_file: ${certFile} ${invalid}`);
  // And what OpenSSL takes, as the listener's are checked: a key its security level refuses (an RSA key under 1024
  // bits: EE_KEY_TOO_SMALL) failed in every connection's context instead, each request a 502 naming nothing.
  try {
    nodeTls().createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(`${keyPath}.tls.cert_file: ${certFile} cannot be used (${(err as { code?: string }).code ?? 'invalid'})`);
  }
}

/**
 * Reads the group's CA and client certificate files. `keyPath` names the group in messages ("load_balancing",
 * "services.billing"). Throws ConfigError for an unreadable file, a CA file without a certificate that parses, or a
 * client certificate and key that do not make a pair: at start-up, in check-config and on reload (which then
 * changes nothing), rather than a 502 on every request.
 */
export function loadUpstreamTransport(group: UpstreamGroupTransport, keyPath: string): UpstreamTransport {
  const tls = group.tls;
  if (!tls.enabled) {
    return { scheme: 'http', http2: group.http2, verify: true, servername: undefined, ca: undefined, cert: undefined, key: undefined };
  }
  const ca = readPem(tls.ca_file, `${keyPath}.tls.ca_file`);
  const cert = readPem(tls.cert_file, `${keyPath}.tls.cert_file`);
  const key = readPem(tls.key_file, `${keyPath}.tls.key_file`);
  if (ca !== undefined) checkCaFile(ca, tls.ca_file, `${keyPath}.tls.ca_file`);
  // The schema has both or neither.
  if (cert !== undefined && key !== undefined) checkClientCertificate(cert, key, tls.cert_file, tls.key_file, keyPath);
  return { scheme: 'https', http2: group.http2, verify: tls.verify, servername: tls.servername === '' ? undefined : tls.servername, ca, cert, key };
}

/** undici's connector factory, from its own module (as balancer/undici.ts loads Pool: not through the index). */
const buildConnector = createRequire(import.meta.url)('undici/lib/core/connect.js') as typeof Undici.buildConnector;

/**
 * The name a TLS connection to `address` sends as SNI and verifies the certificate against: the group's
 * `tls.servername`, else the address; undefined when that is an IP address, which is never sent as SNI (RFC 6066 §3;
 * node warns, DEP0123): the certificate is then checked against the IP.
 */
export function upstreamServername(transport: UpstreamTransport, address: string): string | undefined {
  const name = transport.servername ?? address;
  return isIP(name) === 0 ? name : undefined;
}

/**
 * The `servername` every request to this upstream is dispatched with (undefined over cleartext). undici derives one
 * per request from the Host header when none is given, and reconnects whenever it differs from the connection's:
 * without it, alternating client Hosts tore down the upstream's TLS connections. Its value only has to be the same
 * for every request of the pool (the connector below pins the real SNI); it is the real name where there is one,
 * and the address itself (an IP) where there is none. Two reads, no allocation: this runs on every dispatch.
 */
export function dispatchServername(transport: UpstreamTransport, address: string): string | undefined {
  return transport.scheme === 'https' ? (transport.servername ?? address) : undefined;
}

/**
 * The undici pool options for one upstream of a group: over TLS, SNI and the verified name are always
 * upstreamServername(), whatever the request says; HTTP/2 is offered by ALPN over TLS, or spoken with prior
 * knowledge (h2c) over cleartext. `base` carries the pool's sizes and timeouts; its `connect` options are extended,
 * not replaced.
 *
 * Over TLS the pool gets a connector of its own rather than options: undici's connector takes the servername of the
 * request that opened the connection first (connect.js: `servername || options.servername`), and a request's
 * servername comes from the client's Host header unless the dispatch sets one. A client could then choose the name
 * the upstream's certificate is checked against (`Host: evil.example` failed verification, and counted against the
 * upstream's health). The forwarder sets it on every dispatch (dispatchServername); this pins it for any request
 * that does not (the health checker's), and keeps an IP address from ever being sent as SNI.
 */
export function upstreamPoolOptions(transport: UpstreamTransport, address: string, base: Pool.Options): Pool.Options {
  const connect = { ...(base.connect as object | undefined) } as Record<string, unknown>;
  // h2c goes in the connector options: undici's Pool builds its connector without the top-level useH2c.
  if (transport.http2 && transport.scheme === 'http') connect.useH2c = true;
  if (transport.scheme === 'http') return { ...base, connect: connect as Pool.Options['connect'] };
  const servername = upstreamServername(transport, address);
  if (servername !== undefined) connect.servername = servername;
  // An IP literal in tls.servername: no SNI, and the certificate checked against that IP, as it is for an IP address
  // with no servername (node checks the host it connects to, which is `address` here, maybe a name).
  const identity = servername === undefined && transport.servername !== undefined ? transport.servername : undefined;
  if (identity !== undefined) connect.checkServerIdentity = (_host: string, cert: PeerCertificate) => nodeTls().checkServerIdentity(identity, cert);
  if (transport.ca !== undefined) connect.ca = transport.ca;
  if (transport.cert !== undefined) connect.cert = transport.cert;
  if (transport.key !== undefined) connect.key = transport.key;
  connect.rejectUnauthorized = transport.verify;
  // No TLS 1.2 renegotiation asked for by the upstream (its HelloRequest is answered with the no_renegotiation alert),
  // as the gateway's own listener refuses its clients' (tls/certificate.ts): node's clients accept any number of them,
  // each a full handshake the gateway pays CPU for (50 in 36 ms on one connection). TLSSocket#disableRenegotiation()
  // guards servers only. An OpenSSL upstream ends the connection on the alert (the request's error is then a TLS
  // alert on an established connection, upstream-error.ts); one that carries on without renegotiating is served.
  // Every pool of an upstream is built here: requests, WebSockets, health probes, HTTP/2 sessions (ALPN on this socket).
  connect.secureOptions = ((connect.secureOptions as number | undefined) ?? 0) | cryptoConstants.SSL_OP_NO_RENEGOTIATION;
  const allowH2 = transport.http2;
  // What undici's Pool passes buildConnector itself (pool.js), given connect options and allowH2: ALPN offers h2
  // from these options, so allowH2 goes to both the connector and the pool.
  const inner = buildConnector({ ...(connect as Undici.buildConnector.BuildOptions), allowH2 });
  // Per connection, not per request. Without a servername, undici's connector falls back to the SNI of the pool's own
  // host (util.getServerName: none for an IP address, the certificate then checked against the IP). With an IP
  // literal in tls.servername and a name as the address, that host would have sent the address's name as SNI: the
  // IP is given as the host instead (only undici's SNI reads it; the TCP connection goes to `hostname`).
  const sniHost = identity === undefined ? undefined : isIP(identity) === 6 ? `[${identity}]` : identity;
  // Its errors are marked as the connection's, before any request byte (upstream-error.ts): a handshake the upstream
  // cut (ECONNRESET) is then retried whatever the method, as a refused connection is. Per connection, not per request.
  const pinned: Undici.buildConnector.connector = ({ servername: _fromRequest, ...options }, callback) =>
    inner(servername !== undefined ? { ...options, servername } : sniHost !== undefined ? { ...options, host: sniHost } : options, (...args) => {
      if (args[0] !== null) markConnectError(args[0]);
      else watchServerHandshake(args[1]);
      callback(...args);
    });
  const options: Pool.Options = { ...base, connect: pinned };
  if (allowH2) options.allowH2 = true;
  return options;
}

/**
 * The connector a pool made with `options` (upstreamPoolOptions') opens its connections with: over TLS the one
 * built there, over cleartext what undici's Pool would build itself from the `connect` options (pool.js).
 */
export function poolConnector(options: Pool.Options): Undici.buildConnector.connector {
  if (typeof options.connect === 'function') return options.connect;
  return buildConnector({ ...(options.connect as Undici.buildConnector.BuildOptions | undefined), allowH2: options.allowH2 === true });
}

/**
 * The alerts a TLS 1.3 server sends while it finishes its own side of the handshake, after the client's: about the
 * client's certificate (none, untrusted, expired, revoked, refused) or its CertificateVerify and Finished.
 */
const SERVER_HANDSHAKE_ALERTS: ReadonlySet<string> = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

/**
 * A TLS 1.3 client's handshake is done once it sends its Finished; the server checks the client's certificate after
 * that (RFC 8446 §4.4.2.4) and refuses it with an alert that reaches the connection node already reported
 * established, after the request went out. The upstream's handshake failed, so it read none of it: such an error is
 * marked as the connection's (never sent, retried whatever the method, as a handshake the upstream refused under TLS
 * 1.2 is). There is no renegotiation in TLS 1.3 (and node's client offers no post-handshake authentication), so these
 * alerts cannot be the answer to a refused renegotiation, which may come after a request was processed. Per
 * connection, not per request.
 */
function watchServerHandshake(socket: unknown): void {
  const tls = socket as Partial<Pick<TLSSocket, 'getProtocol' | 'prependOnceListener'>> | null | undefined;
  if (typeof tls?.getProtocol !== 'function' || typeof tls.prependOnceListener !== 'function') return;
  if (tls.getProtocol() !== 'TLSv1.3') return;
  tls.prependOnceListener('error', (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && SERVER_HANDSHAKE_ALERTS.has(code)) markConnectError(err);
  });
}

/** At start-up and on reload: an upstream group that does not verify certificates is worth a loud line. */
export function warnIfUnverified(group: UpstreamGroupTransport, keyPath: string, logger: Logger): void {
  if (group.tls.enabled && !group.tls.verify) {
    logger.warn(
      { key: `${keyPath}.tls.verify`, risk: 'upstream certificates are NOT verified: anyone on the path can impersonate the upstream' },
      EVENTS.upstreamTlsUnverified,
    );
  }
}

/** OpenSSL/node verification codes, by what they mean to an operator. */
const REASONS: Readonly<Record<string, string>> = {
  ERR_TLS_CERT_ALTNAME_INVALID: 'name mismatch',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown CA',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown CA',
  CERT_UNTRUSTED: 'unknown CA',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not yet valid',
  CERT_REVOKED: 'revoked',
  CERT_SIGNATURE_FAILURE: 'bad signature',
  INVALID_PURPOSE: 'certificate not meant for servers',
};

/**
 * Why a TLS connection to an upstream failed, in words for the log line ("name mismatch", "unknown CA",
 * "expired", "handshake failed: ..."), or undefined when `err` is not a TLS failure.
 */
export function tlsFailureReason(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const reason = REASONS[code];
  if (reason !== undefined) return reason;
  // The upstream refused our handshake (no or wrong client certificate, no shared protocol or cipher).
  if (code.startsWith('ERR_SSL_')) return `handshake failed: ${code.slice(8).toLowerCase().replaceAll('_', ' ')}`;
  return undefined;
}
