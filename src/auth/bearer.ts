// Reads the bearer token from an Authorization header (RFC 6750 §2.1); a pure function shared by the phase and logout.

/** What the Authorization header held. */
export type BearerCredential =
  | { readonly kind: 'none' }
  /** Bearer scheme, but no token or a token with characters RFC 6750 does not allow. */
  | { readonly kind: 'malformed' }
  | { readonly kind: 'token'; readonly token: string };

/** RFC 6750 b64token: the characters a bearer token may contain. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** RFC 9110 tchar: a character that may continue a scheme name ("Bearerish" is another scheme, not Bearer). */
function isTokenChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

/**
 * Parses `Authorization`. The scheme is case-insensitive; another scheme (Basic…) counts as no bearer credential,
 * so the challenge then carries no error code. `Bearer` followed by anything but a space (a tab, a no-break space,
 * a colon) is a malformed bearer credential, not another scheme: RFC 9110 puts spaces after the scheme, and backends
 * that split on any whitespace would read the token in it, so it must never pass as something we do not check.
 */
export function parseBearer(header: string | undefined): BearerCredential {
  if (header === undefined) return { kind: 'none' };
  const value = header.trim();
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'bearer') return { kind: 'none' };
  if (value.length > 6) {
    const next = value.charCodeAt(6);
    if (next !== 0x20) return isTokenChar(next) ? { kind: 'none' } : { kind: 'malformed' };
  }
  const token = value.slice(6).trim();
  if (token === '' || !B64TOKEN.test(token)) return { kind: 'malformed' };
  return { kind: 'token', token };
}
