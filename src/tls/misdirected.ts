// The 421 check (pure over the certificate list): a TLS request for a host that a certificate names, though not the
// one its connection's SNI chose.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../errors.js';
import { hostOf } from '../routing/conditions.js';
import { nameMatches, pickCertificate, type NamedCertificate } from './sni.js';

const MISDIRECTED = new GatewayError('MISDIRECTED_REQUEST', { details: "the request's host is not named by the certificate its connection's server name chose" });

/**
 * 421 for a request over TLS whose host (Host, or :authority) its connection's certificate, the one SNI chose, does
 * not name, while another certificate does: a client that handshook as `a.test`, checked a.test's certificate,
 * then asked for `b.test`, was served b.test's routes under a certificate that does not name it (domain fronting
 * past SNI-based filters in front of the gateway). A host the connection's certificate names is served (HTTP/2
 * connection reuse, names two certificates share), and so is one no certificate names (an address, an internal
 * name, a load balancer's probe): there is no connection of its own to send the client to. Nothing to check with one
 * certificate, or without SNI (clients connecting by address send none).
 */
export function misdirected(certificates: readonly NamedCertificate[], req: IncomingMessage): GatewayError | undefined {
  if (certificates.length < 2) return undefined;
  const servername = (req.socket as TLSSocket | null | undefined)?.servername;
  if (typeof servername !== 'string' || servername === '') return undefined;
  const host = hostOf((req.headers[':authority'] as string | undefined) ?? req.headers.host);
  if (host === '') return undefined;
  const names = (c: NamedCertificate): boolean => c.names.some((name) => nameMatches(name, host));
  if (names(pickCertificate(certificates, servername))) return undefined;
  return certificates.some(names) ? MISDIRECTED : undefined;
}
