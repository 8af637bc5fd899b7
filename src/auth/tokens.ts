// Access tokens (JWT via jose): signing and strict verification. HTTP-free; errors never carry the token.
import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { SigningKeys } from './keys.js';
import { TokenError } from './token-error.js';

/** RFC 9068 media type of an OAuth access token JWT; a token without it (an ID token, a refresh JWT) is refused. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/**
 * Private claim: the issue time in epoch milliseconds. `iat` is whole seconds (RFC 7519 NumericDate, kept for other
 * verifiers), while revocations are stamped in ms: compared by `iat` alone, a token issued in the same second after a
 * logout of every session or an operator action was refused for its whole lifetime.
 */
export const ISSUED_AT_MS_CLAIM = 'iat_ms';

/**
 * Private claim: the user's token generation when the token was issued (read from the user store under the user's
 * lock, see SessionStart). Every log-out everywhere, disable, password reset or delete raises it, and the revocation
 * store refuses a token whose generation is below the latest one it was told of: an order kept by the user store,
 * where comparing `iat_ms` with a revocation time compared the clocks of two hosts. Tokens issued before the claim
 * existed have none and are judged by their issue time, as before (see KvStore.isRevoked).
 */
export const GENERATION_CLAIM = 'gen';

// TokenError lives apart from jose (token-error.ts) so the auth-off phase can use it without loading jose.
export { TokenError, type TokenErrorReason } from './token-error.js';

/** The verified claims of an access token. */
export interface AccessTokenClaims {
  readonly userId: string;
  readonly email: string;
  /** The `jti`, used to revoke this one token. */
  readonly tokenId: string;
  /** `exp` in milliseconds since the epoch. */
  readonly expiresAt: number;
  /**
   * When it was issued, epoch ms: revoking a user refuses tokens issued at or before the revocation time. Exact to
   * the millisecond (the `iat_ms` claim); for a token issued before that claim existed, `iat` × 1000 (whole seconds,
   * so one issued in the same second after a revocation stays refused, as it always was).
   */
  readonly issuedAt: number;
  /** The user's token generation it was issued under (GENERATION_CLAIM); undefined for a token issued without one. */
  readonly generation?: number;
}

/** A freshly signed access token. */
export interface IssuedAccessToken {
  readonly token: string;
  readonly tokenId: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  /** Lifetime in whole seconds, for the `expires_in` field. */
  readonly expiresIn: number;
}

/** What a TokenService needs: the loaded keys and the `jwt` config values (durations in ms). */
export interface TokenServiceOptions {
  readonly keys: SigningKeys;
  readonly issuer: string;
  readonly audience: string;
  /** Config `jwt.access_token_expiration`, milliseconds. */
  readonly accessTokenTtlMs: number;
  /** Allowed clock difference between gateway processes when checking exp/iat, seconds (default 5). */
  readonly clockToleranceSeconds?: number;
  /**
   * How many verified tokens to remember (default 10 000). A token string that verified once is accepted again
   * without redoing the signature check (jose's WebCrypto verify is asynchronous and runs on the thread pool) until
   * its exp; revocation is still checked on every request by the auth phase.
   */
  readonly verifiedCacheSize?: number;
}

/** Signs and verifies access tokens. Built once at start-up; safe to share between requests. */
export class TokenService {
  readonly #keys: SigningKeys;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #ttlSeconds: number;
  readonly #tolerance: number;
  readonly #cacheSize: number;
  /** token → claims of tokens whose signature and claims verified; bounded, oldest dropped first. */
  readonly #verified = new Map<string, AccessTokenClaims>();

  constructor(options: TokenServiceOptions) {
    this.#keys = options.keys;
    this.#issuer = options.issuer;
    this.#audience = options.audience;
    this.#ttlSeconds = Math.max(1, Math.floor(options.accessTokenTtlMs / 1000));
    this.#tolerance = options.clockToleranceSeconds ?? 5;
    this.#cacheSize = options.verifiedCacheSize ?? 10_000;
  }

  /**
   * The longest time after its `iat` that a token can still be accepted (lifetime + clock tolerance), ms: how long
   * a revocation must be remembered.
   */
  get acceptWindowMs(): number {
    return acceptWindowMs(this.#ttlSeconds * 1000, this.#tolerance);
  }

  /** Lifetime of an access token in seconds (the `expires_in` value). */
  get expiresIn(): number {
    return this.#ttlSeconds;
  }

  /**
   * Signs an access token for `user`, valid from `now` (ms, default Date.now()) for the configured lifetime, or until
   * `notAfterMs` when that comes first (its session's absolute end), carrying `generation` (the user's token
   * generation read with the session, see GENERATION_CLAIM) when given.
   */
  async issue(user: { id: string; email: string }, now: number = Date.now(), generation?: number, notAfterMs?: number): Promise<IssuedAccessToken> {
    const issuedAtMs = Math.floor(now);
    const iat = Math.floor(issuedAtMs / 1000);
    // A session's absolute end caps its access tokens too (Keycloak caps them at SSO Session Max): no later than it.
    const exp = notAfterMs === undefined ? iat + this.#ttlSeconds : Math.max(iat, Math.min(iat + this.#ttlSeconds, Math.floor(notAfterMs / 1000)));
    const tokenId = randomUUID();
    const header: { alg: string; typ: string; kid?: string } = { alg: this.#keys.algorithm, typ: ACCESS_TOKEN_TYPE };
    if (this.#keys.kid !== undefined) header.kid = this.#keys.kid;
    const claims: JWTPayload = { email: user.email, [ISSUED_AT_MS_CLAIM]: issuedAtMs };
    if (generation !== undefined) claims[GENERATION_CLAIM] = generation;
    const token = await new SignJWT(claims)
      .setProtectedHeader(header)
      .setSubject(user.id)
      .setIssuer(this.#issuer)
      .setAudience(this.#audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(tokenId)
      .sign(this.#keys.signKey);
    return { token, tokenId, expiresAt: exp * 1000, expiresIn: exp - iat };
  }

  /**
   * Verifies a token: the algorithm is pinned to the configured one (so `none` and keys of another algorithm fail),
   * as are issuer, audience and type. Resolves with the claims, or rejects with TokenError.
   */
  async verify(token: string, now: number = Date.now()): Promise<AccessTokenClaims> {
    const cached = this.verifiedClaims(token, now);
    if (cached !== undefined) return cached;
    const claims = await this.#verifySignature(token, now);
    if (this.#verified.size >= this.#cacheSize) {
      // Oldest first (Map keeps insertion order): a bounded cache, no per-entry timers.
      const oldest = this.#verified.keys().next();
      if (!oldest.done) this.#verified.delete(oldest.value);
    }
    this.#verified.set(token, claims);
    return claims;
  }

  /**
   * The last moment (epoch ms) a token with these claims is still accepted: its `exp` plus the clock tolerance.
   * A revocation must be remembered at least this long, or the token works again in the tolerance window.
   */
  acceptedUntil(claims: Pick<AccessTokenClaims, 'expiresAt'>): number {
    return claims.expiresAt + this.#tolerance * 1000;
  }

  /**
   * The claims of `token` when it verified before and has not expired since; undefined otherwise (then call
   * verify). Synchronous, so the auth phase needs no promise for a token it has already seen.
   */
  verifiedClaims(token: string, now: number = Date.now()): AccessTokenClaims | undefined {
    const cached = this.#verified.get(token);
    if (cached === undefined) return undefined;
    if (now < cached.expiresAt + this.#tolerance * 1000) {
      // Issued in this clock's future (it stepped back since the token verified): refused as #verifySignature
      // refuses it, but kept, since the clock will reach its iat again. Whole seconds, as there.
      return Math.floor(cached.issuedAt / 1000) <= Math.floor(now / 1000) + this.#tolerance ? cached : undefined;
    }
    this.#verified.delete(token);
    return undefined;
  }

  async #verifySignature(token: string, now: number): Promise<AccessTokenClaims> {
    if (!isCanonicalCompact(token)) throw new TokenError('invalid');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys.verifyKey, {
        algorithms: [this.#keys.algorithm],
        issuer: this.#issuer,
        audience: this.#audience,
        typ: ACCESS_TOKEN_TYPE,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        clockTolerance: this.#tolerance,
        currentDate: new Date(now),
      }));
    } catch (err) {
      // `cause` is jose's error: its message names a claim or check, never the token itself.
      throw new TokenError(err instanceof joseErrors.JWTExpired ? 'expired' : 'invalid', { cause: err });
    }
    const { sub, email, jti, exp, iat } = payload;
    const iatMs = payload[ISSUED_AT_MS_CLAIM];
    const generation = payload[GENERATION_CLAIM];
    if (
      typeof sub !== 'string' ||
      sub === '' ||
      typeof email !== 'string' ||
      typeof jti !== 'string' ||
      typeof exp !== 'number' ||
      typeof iat !== 'number'
    ) {
      throw new TokenError('invalid');
    }
    // Accepted for at most the configured lifetime after issue, whatever `exp` says: revocations (a logout of every
    // session, a disable, a reset) are remembered only that long (acceptWindowMs), so a token issued before
    // `access_token_expiration` was lowered, with its older and later `exp`, worked again once they were forgotten.
    // The same comparison and tolerance as jose's `exp` check.
    const until = Math.min(exp, iat + this.#ttlSeconds);
    if (until <= Math.floor(now / 1000) - this.#tolerance) throw new TokenError('expired');
    // Not issued yet by this clock, beyond the tolerance (jose checks `iat` only against a maxTokenAge): a token
    // stamped by a clock that ran ahead, checked here after NTP stepped this one back (or on a gateway whose clock is
    // behind), was accepted for its lifetime plus the step, and, logged out before the step, again once its
    // revocation had expired on Redis's clock while this one still read it unexpired. Refused until the clock
    // reaches its iat less the tolerance; the client's refresh gets a token of the clock as it is now.
    if (iat > Math.floor(now / 1000) + this.#tolerance) throw new TokenError('invalid');
    // A generation is a count: anything else is no token issue() made (the signature covers it, so only a holder of
    // the key could write one).
    if (generation !== undefined && (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0)) {
      throw new TokenError('invalid');
    }
    const generationClaim = generation === undefined ? {} : { generation };
    if (iatMs === undefined) return { userId: sub, email, tokenId: jti, expiresAt: until * 1000, issuedAt: iat * 1000, ...generationClaim };
    // Must lie within the second `iat` names (issue writes both from one time): jose checked `iat`, and a claim that
    // disagreed with it would move the time revocations are compared with away from the one jose checked.
    if (typeof iatMs !== 'number' || !Number.isSafeInteger(iatMs) || Math.floor(iatMs / 1000) !== iat) {
      throw new TokenError('invalid');
    }
    return { userId: sub, email, tokenId: jti, expiresAt: until * 1000, issuedAt: iatMs, ...generationClaim };
  }
}

/**
 * True when `token` is spelled as `issue` writes it: no `=` padding, and a signature that is the canonical base64url
 * of its bytes. jose's decoder (atob) accepts padding and ignores a signature's unused trailing bits, so without this
 * one token had several accepted spellings (4 of an HS256 one, 16 of an EdDSA or RS256 one, each with `=` or not):
 * each was forwarded as sent, a backend's deny list or cache of token strings did not know it, and the verified cache
 * held one entry per spelling. The header and payload need no check: their text is what the signature covers.
 */
function isCanonicalCompact(token: string): boolean {
  if (token.includes('=')) return false;
  const signature = token.slice(token.lastIndexOf('.') + 1);
  return Buffer.from(signature, 'base64url').toString('base64url') === signature;
}

/**
 * How long a revocation must be remembered, ms: after it, an access token of lifetime `accessTokenTtlMs` issued
 * before it can still be accepted for the lifetime (rounded as `issue` does) plus the clock tolerance twice. Once for
 * the verifying host's clock behind (`exp` is checked with the tolerance), once for the issuing host's ahead (its
 * `iat` may be up to the tolerance in the verifier's future): such a token, issued just before a log-out everywhere,
 * is refused by its generation, and was accepted again in the last seconds of its life when the revocation was
 * forgotten a tolerance earlier. The CLI uses it to size revocations without loading keys.
 */
export function acceptWindowMs(accessTokenTtlMs: number, clockToleranceSeconds = 5): number {
  return (Math.max(1, Math.floor(accessTokenTtlMs / 1000)) + 2 * clockToleranceSeconds) * 1000;
}

/** Shorthand for `new TokenService(options)`. */
export function createTokenService(options: TokenServiceOptions): TokenService {
  return new TokenService(options);
}
