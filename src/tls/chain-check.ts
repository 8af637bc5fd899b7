// A certificate file that holds the server's own certificate alone, when that certificate was issued by an
// intermediate CA: the commonest TLS deployment mistake (cert.pem served instead of fullchain.pem). Browsers often
// hide it, having fetched or cached the intermediate; curl, Go, Python, Java and Android clients fail the handshake
// with "unable to get local issuer certificate".
import { X509Certificate } from 'node:crypto';
import { nodeTls } from '../node-builtins.js';

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----/g;

/**
 * The issuer (one line, "CN=…, O=…") that clients would need and the file does not hold, or undefined. Told only of
 * a leaf that is alone in its file and names where its issuer is fetched from (an Authority Information Access "CA
 * Issuers" entry, which public CAs put in every certificate they issue from an intermediate), and whose issuer is not
 * a root CA node trusts. A leaf of a private CA (no such entry, as `openssl ca` issues by default) is its owner's to
 * judge: its clients are given the CA themselves, so it draws nothing.
 */
export function missingIssuer(pem: Buffer, leaf: X509Certificate): string | undefined {
  if ((pem.toString('latin1').match(CERTIFICATE_BLOCK)?.length ?? 0) !== 1) return undefined;
  if (leaf.issuer === leaf.subject) return undefined; // self-signed: no chain to send
  if (!/CA Issuers - URI:/.test(leaf.infoAccess ?? '')) return undefined;
  for (const root of nodeTls().rootCertificates) {
    const ca = new X509Certificate(root);
    if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) return undefined; // issued by a root clients hold
  }
  return leaf.issuer.split('\n').join(', ');
}
