// Refresh tokens: opaque 256-bit random strings handed to clients; only their SHA-256 hash is ever stored.
import { createHash, randomBytes } from 'node:crypto';

/** 32 random bytes in base64url: always 43 characters. */
const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** A new refresh token (256 bits from the CSPRNG, base64url, no padding). */
export function generateRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The value stored and looked up for `token`: SHA-256, hex. A plain (unsalted) hash is enough because the token
 * has 256 bits of entropy, and it keeps lookups a single indexed equality.
 */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` could have come from generateRefreshToken; anything else is refused without a store lookup. */
export function isWellFormedRefreshToken(token: string): boolean {
  return REFRESH_TOKEN_SHAPE.test(token);
}
