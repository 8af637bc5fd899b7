// Tampering with a JWT in a way that always changes it. Replacing a token's last characters does not: the last
// base64url character of an HS256 signature carries 4 bits and 2 padding bits that decoders ignore, so "…xw" → "…xx"
// can decode to the same signature (about one token in a thousand). The first character carries 6 whole bits.

/** `token` with the first character of its signature changed: a token whose signature no longer verifies. */
export function withBadSignature(token: string): string {
  const dot = token.lastIndexOf('.');
  const first = token[dot + 1];
  return `${token.slice(0, dot + 1)}${first === 'A' ? 'B' : 'A'}${token.slice(dot + 2)}`;
}
