// SNI selection (pure): which certificate answers a TLS client hello, from each certificate's own SAN names.

/** What selection needs to know about a certificate. */
export interface NamedCertificate {
  /** DNS names from subjectAltName (lower-case; may hold one leading "*." wildcard label). */
  readonly names: readonly string[];
}

/**
 * True when `hostname` is covered by `pattern` (RFC 6125 §6.4.3): an exact, case-insensitive match, or a
 * "*.example.com" wildcard that stands for exactly one left-most label ("a.example.com", never "a.b.example.com"
 * nor "example.com").
 */
export function nameMatches(pattern: string, hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (pattern === host) return true;
  if (!pattern.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
}

/**
 * The certificate for `servername`: an exact name beats a wildcard (a specific certificate wins over a catch-all
 * one), then the first match in config order; no match (or no SNI) gives the first certificate, the default.
 * `certificates` must not be empty.
 */
export function pickCertificate<T extends NamedCertificate>(certificates: readonly T[], servername: string | undefined): T {
  if (servername) {
    const host = servername.toLowerCase();
    for (const cert of certificates) if (cert.names.includes(host)) return cert;
    for (const cert of certificates) if (cert.names.some((name) => nameMatches(name, host))) return cert;
  }
  return certificates[0]!;
}
