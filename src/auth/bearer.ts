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
 * so the challenge then carries no error code. A value that starts with `Bearer` but not `Bearer ` (a tab, a
 * no-break space, a colon, a dot or an underscore after it) is a malformed bearer credential, not another scheme: a
 * backend that splits on any whitespace, or takes what follows the first seven characters, would read the token in
 * it, so it must never pass as something we do not check. No scheme in use starts with "bearer" otherwise.
 */
export function parseBearer(header: string | undefined): BearerCredential {
  if (header === undefined) return { kind: 'none' };
  const value = header.trim();
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'bearer') return { kind: 'none' };
  if (value.length > 6 && value.charCodeAt(6) !== 0x20) return { kind: 'malformed' };
  const token = value.slice(6).trim();
  if (token === '' || !B64TOKEN.test(token)) return { kind: 'malformed' };
  return { kind: 'token', token };
}
