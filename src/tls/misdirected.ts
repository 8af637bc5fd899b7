// The 421 check (pure over the certificate list): a TLS request whose host would have been served another
// certificate than the one its connection's SNI chose.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../errors.js';
import { hostOf } from '../routing/conditions.js';
import { pickCertificate, type NamedCertificate } from './sni.js';

const MISDIRECTED = new GatewayError('MISDIRECTED_REQUEST', { details: "the request's host is not served under the certificate its connection's server name chose" });

/**
 * 421 for a request over TLS whose Host (or :authority) picks another certificate than its connection's SNI did:
 * a client that handshook as `a.test`, checked a.test's certificate, then asked for `b.test`, whose routes were
 * served under a certificate that does not name it (domain fronting past SNI-based filters in front of the
 * gateway). Nothing to check with one certificate (every host gets it), or without SNI (clients connecting by
 * address send none). HTTP/2 clients that reuse a connection for another host covered by its certificate are
 * answered 421 only when that host has a certificate of its own, and open one for it (RFC 9113 §9.1.2).
 */
export function misdirected(certificates: readonly NamedCertificate[], req: IncomingMessage): GatewayError | undefined {
  if (certificates.length < 2) return undefined;
  const servername = (req.socket as TLSSocket | null | undefined)?.servername;
  if (typeof servername !== 'string' || servername === '') return undefined;
  const host = hostOf((req.headers[':authority'] as string | undefined) ?? req.headers.host);
  if (host === '') return undefined;
  return pickCertificate(certificates, servername) === pickCertificate(certificates, host) ? undefined : MISDIRECTED;
}
