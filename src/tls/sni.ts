// SNI selection (pure): which certificate answers a TLS client hello, from each certificate's own SAN names.

/** What selection needs to know about a certificate. */
export interface NamedCertificate {
  /** DNS names from subjectAltName (lower-case; may hold one leading "*." wildcard label). */
  readonly names: readonly string[];
}

/**
 * A client hello's server name in the form routes match the Host in (routing/conditions.ts hostOf, after
 * pipeline/host-check.ts): lower case, without one trailing dot ("API.Example.com." is "api.example.com"). Without
 * it, a client that sends the absolute name would get the default certificate while its request took the route of
 * the name: certificate choice and route choice would disagree.
 */
export function normaliseServerName(servername: string): string {
  const name = servername.endsWith('.') ? servername.slice(0, -1) : servername;
  return name.toLowerCase();
}

/**
 * True when `hostname` is covered by `pattern` (RFC 6125 §6.4.3): an exact, case-insensitive match, or a
 * "*.example.com" wildcard that stands for exactly one left-most label ("a.example.com", never "a.b.example.com"
 * nor "example.com"). A trailing dot on `hostname` is ignored (normaliseServerName).
 */
export function nameMatches(pattern: string, hostname: string): boolean {
  return covers(pattern, normaliseServerName(hostname));
}

/** nameMatches for a name already normalised (normalising twice would drop a second trailing dot). */
function covers(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
}

/**
 * The certificate for `servername`: an exact name beats a wildcard (a specific certificate wins over a catch-all
 * one), then the first match in config order; no match (or no SNI) gives the first certificate, the default. The
 * name is compared as normaliseServerName gives it (case, trailing dot). `certificates` must not be empty.
 */
export function pickCertificate<T extends NamedCertificate>(certificates: readonly T[], servername: string | undefined): T {
  if (servername) {
    const host = normaliseServerName(servername);
    for (const cert of certificates) if (cert.names.includes(host)) return cert;
    for (const cert of certificates) if (cert.names.some((name) => covers(name, host))) return cert;
  }
  return certificates[0]!;
}
