// A certificate file that holds the server's own certificate alone, when that certificate was issued by an
// intermediate CA: the commonest TLS deployment mistake (cert.pem served instead of fullchain.pem). Browsers often
// hide it, having fetched or cached the intermediate; curl, Go, Python, Java and Android clients fail the handshake
// with "unable to get local issuer certificate".
import { X509Certificate } from 'node:crypto';
import { nodeTls } from '../node-builtins.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The issuer (one line, "CN=…, O=…") that clients would need and the file does not hold, or undefined:
 * - a leaf followed by other certificates, the first of which did not issue it (a root or another chain pasted after
 *   it where its intermediate belongs): its issuer is missing whatever the leaf says;
 * - a leaf alone in its file that names where its issuer is fetched from (an Authority Information Access "CA
 *   Issuers" entry, which public CAs put in every certificate they issue from an intermediate), and whose issuer is
 *   not a root CA node trusts. A leaf of a private CA without such an entry (as `openssl ca` issues by default) is its
 *   owner's to judge: its clients are given the CA themselves, so it draws nothing.
 */
export function missingIssuer(pem: Buffer, leaf: X509Certificate): string | undefined {
  if (leaf.issuer === leaf.subject) return undefined; // self-signed: no chain to send
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length > 1) {
    let next: X509Certificate;
    try {
      next = new X509Certificate(blocks[1]!);
    } catch {
      return undefined; // not a certificate node reads: the handshake's problem, not this check's
    }
    return leaf.checkIssued(next) ? undefined : issuerOf(leaf);
  }
  if (!/CA Issuers - URI:/.test(leaf.infoAccess ?? '')) return undefined;
  if (trustedRoots().some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))) return undefined; // issued by a root clients hold
  return issuerOf(leaf);
}

function issuerOf(leaf: X509Certificate): string {
  return leaf.issuer.split('\n').join(', ');
}

/** node's root CAs, parsed once (about 25 ms; a reload that loads the same certificate again does not pay it again). */
let roots: X509Certificate[] | undefined;
function trustedRoots(): X509Certificate[] {
  return (roots ??= nodeTls().rootCertificates.map((pem) => new X509Certificate(pem)));
}
