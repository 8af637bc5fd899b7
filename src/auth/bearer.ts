// Reads the bearer token from an Authorization header (RFC 6750 §2.1); a pure function shared by the phase and logout.

/** What the Authorization header held. */
export type BearerCredential =
  | { readonly kind: 'none' }
  /** Bearer scheme, but no token or a token with characters RFC 6750 does not allow. */
  | { readonly kind: 'malformed' }
  | { readonly kind: 'token'; readonly token: string };

/** RFC 6750 b64token: the characters a bearer token may contain. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses `Authorization`. The scheme is case-insensitive; another scheme (Basic…) counts as no bearer credential,
 * so the challenge then carries no error code.
 */
export function parseBearer(header: string | undefined): BearerCredential {
  if (header === undefined) return { kind: 'none' };
  const value = header.trim();
  const space = value.indexOf(' ');
  const scheme = space === -1 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return { kind: 'none' };
  const token = space === -1 ? '' : value.slice(space + 1).trim();
  if (token === '' || !B64TOKEN.test(token)) return { kind: 'malformed' };
  return { kind: 'token', token };
}
