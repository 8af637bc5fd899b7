// The auth rules: register, login, refresh (rotation + reuse detection) and logout, over UserStore and KvStore. HTTP-free.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { describeCause, GatewayError } from '../errors.js';
import type { KvStore } from '../kv/kv-store.js';
import { EmailTakenError, type NewRefreshToken, type SessionStart, type UserRecord, type UserStore } from '../store/user-store.js';
import { TOKEN_REVOCATION } from '../store/identity-types.js';
import { noopAuthEvents, type AuthEventSink } from './events.js';
import type { PasswordHasher } from './password.js';
import { generateRefreshToken, hashRefreshToken, isWellFormedRefreshToken } from './refresh-token.js';
import { INVALID_TOKEN_CHALLENGE, TokenError } from './token-error.js';
import type { AccessTokenClaims, TokenService } from './tokens.js';
import { userSubject } from './phase.js';
import { EVENTS } from '../observability/events.js';

export { INVALID_TOKEN_CHALLENGE };

/** Tokens handed to a client after refresh. */
export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly tokenType: 'Bearer';
  /** Access token lifetime in seconds. */
  readonly expiresIn: number;
}

/**
 * The request an action came in on, for the lines that tell an operator about it (a token reuse, a logout of every
 * session): its access line carries the same ids, so a security event leads to its client.
 */
export interface RequestFacts {
  readonly request_id: string;
  readonly trace_id?: string | undefined;
  readonly client: string;
}

/** Tokens plus the user, after register or login. */
export interface Session extends TokenPair {
  readonly userId: string;
  readonly email: string;
}

/** What the service needs; every object is created once in the composition root. */
export interface AuthServiceDeps {
  readonly store: UserStore;
  /** Logout: `revoke` (the presented access token), `isRevoked` and `revokeSubject` (logout of every session). */
  readonly kv: Pick<KvStore, 'revoke' | 'isRevoked' | 'revokeSubject'>;
  readonly passwords: PasswordHasher;
  readonly tokens: TokenService;
  /** Config `jwt.refresh_token_expiration`, ms. */
  readonly refreshTokenTtlMs: number;
  /** Config `jwt.refresh_token_absolute_expiration`, ms: a session's longest life from its login; 0 or absent: none. */
  readonly sessionMaxMs?: number;
  /** Config `jwt.refresh_reuse_grace`, ms. */
  readonly refreshReuseGraceMs: number;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
  /** Default: a no-op sink. */
  readonly events?: AuthEventSink;
  /** Clock (ms), for tests. Default Date.now. */
  readonly now?: () => number;
}

/**
 * The auth use cases. Domain refusals are thrown as GatewayError (INVALID_CREDENTIALS, INVALID_REFRESH_TOKEN,
 * EMAIL_TAKEN, UNAUTHORIZED); StoreUnavailableError and KvUnavailableError propagate for the caller to map to 503.
 * Input is expected already validated and normalised (validation.ts).
 */
/** A new session's first refresh token: the one the client gets, its stored record, and the session's end (ms). */
interface FirstToken {
  readonly refreshToken: string;
  readonly record: NewRefreshToken;
  readonly endsAt: number | undefined;
}

export class AuthService {
  readonly #d: AuthServiceDeps;
  readonly #events: AuthEventSink;
  readonly #now: () => number;

  constructor(deps: AuthServiceDeps) {
    this.#d = deps;
    this.#events = deps.events ?? noopAuthEvents;
    this.#now = deps.now ?? Date.now;
  }

  /** Creates the user and a first session. Throws GatewayError EMAIL_TAKEN (409) for an existing email. */
  async register(input: { email: string; password: string }): Promise<Session> {
    const passwordHash = await this.#d.passwords.hash(input.password);
    const id = randomUUID();
    const now = this.#now();
    const first = this.#firstToken(id, now);
    let registered: { user: UserRecord; start: SessionStart };
    try {
      // One transaction: a store that failed between the account and its session answered 503 and left the account,
      // so the client's retry met 409 email_taken for an account it never got a session of.
      registered = await this.#d.store.registerUser({ id, email: input.email, passwordHash }, first.record);
    } catch (err) {
      if (err instanceof EmailTakenError) throw new GatewayError('EMAIL_TAKEN');
      throw err;
    }
    this.#events.record('register');
    return this.#session(registered.user, now, registered.start, first);
  }

  /**
   * Checks the credentials and starts a session. Unknown email and wrong password both throw INVALID_CREDENTIALS
   * after one argon2 verify each, so neither the body nor the time tells them apart. A disabled user gets the same
   * answer after the same verify, as does a login whose password a reset replaced (or whose user was disabled) while
   * it was being verified. A hash made with older parameters is replaced.
   */
  async login(input: { email: string; password: string }): Promise<Session> {
    const user = await this.#d.store.findUserByEmail(input.email);
    if (!user) {
      await this.#d.passwords.verifyDummy(input.password);
      this.#events.record('login_failure');
      throw new GatewayError('INVALID_CREDENTIALS');
    }
    const check = await this.#d.passwords.verify(user.passwordHash, input.password);
    if (!check.ok || user.disabledAt !== null) {
      this.#events.record('login_failure');
      throw new GatewayError('INVALID_CREDENTIALS');
    }
    const verifiedHash = check.needsRehash ? await this.#rehash(user, input.password) : user.passwordHash;
    const session =
      (await this.#startSession(user, verifiedHash)) ??
      (await this.#startSessionAgainstCurrent(user, verifiedHash, input.password));
    if (!session) {
      this.#events.record('login_failure');
      throw new GatewayError('INVALID_CREDENTIALS');
    }
    this.#events.record('login_success');
    return session;
  }

  /**
   * The second chance of a login whose session the store refused because the user's hash is no longer the verified
   * one. That is a reset (the session must not be created), but also another login of the same user that re-hashed
   * the password first: overlapping logins after an argon2 parameter change would otherwise fail all but the first,
   * with the right password. So the current row is read and, when its hash differs, the password is verified against
   * it once more (an extra argon2 run only in this race): the right password for the current hash earns a session,
   * tied to that hash so a reset committing meanwhile still wins. Undefined when the user is gone or disabled, the
   * hash is unchanged (nothing to retry), the password does not match the current hash, or the retry loses again.
   */
  async #startSessionAgainstCurrent(
    user: UserRecord,
    verifiedHash: string,
    password: string,
  ): Promise<Session | undefined> {
    const current = await this.#d.store.findUserById(user.id);
    if (!current || current.disabledAt !== null || current.passwordHash === verifiedHash) return undefined;
    const check = await this.#d.passwords.verify(current.passwordHash, password);
    // No re-hash here even if asked for: one changed it a moment ago, and a loop of racing re-hashes helps nobody.
    if (!check.ok) return undefined;
    return this.#startSession(current, current.passwordHash);
  }

  /**
   * Rotates a refresh token: the presented one stops working and a new pair is returned. A token rotated within
   * the grace period is refused without side effects (a concurrent refresh won); an older one revokes its whole
   * session. Every refusal is INVALID_REFRESH_TOKEN.
   */
  async refresh(refreshToken: string, about?: RequestFacts): Promise<TokenPair> {
    if (!isWellFormedRefreshToken(refreshToken)) throw new GatewayError('INVALID_REFRESH_TOKEN');
    const now = this.#now();
    const next = generateRefreshToken();
    const maxMs = this.#d.sessionMaxMs ?? 0;
    const result = await this.#d.store.rotateRefreshToken(
      hashRefreshToken(refreshToken),
      {
        id: randomUUID(),
        tokenHash: hashRefreshToken(next),
        expiresAt: new Date(now + this.#d.refreshTokenTtlMs),
        // The end of a session that has none yet (started before schema 10, or last rotated by an older gateway).
        ...(maxMs > 0 ? { sessionExpiresAt: new Date(now + maxMs) } : {}),
      },
      new Date(now),
      this.#d.refreshReuseGraceMs,
    );
    switch (result.kind) {
      case 'rotated': {
        const access = await this.#d.tokens.issue(result.user, now, result.generation, result.sessionExpiresAt?.getTime());
        this.#events.record('refresh');
        return { accessToken: access.token, refreshToken: next, tokenType: 'Bearer', expiresIn: access.expiresIn };
      }
      case 'reused':
        this.#events.record('reuse_detected');
        this.#d.logger.warn({ ...about, user_id: result.userId, family_id: result.familyId }, EVENTS.refreshTokenReused);
        throw new GatewayError('INVALID_REFRESH_TOKEN');
      case 'grace':
      case 'invalid':
        throw new GatewayError('INVALID_REFRESH_TOKEN');
    }
  }

  /**
   * Ends sessions. With `allSessions`, an access token the proxy would accept is required (valid and not revoked,
   * else UNAUTHORIZED with an invalid_token challenge) and every session and access token of its user is revoked;
   * otherwise the refresh token's session is. An unknown refresh token is not an error (RFC 7009: logout is
   * idempotent). The access token, when valid, is revoked for as long as it could be accepted.
   */
  async logout(input: { refreshToken?: string; accessToken?: string; allSessions: boolean }, about?: RequestFacts): Promise<void> {
    const now = this.#now();
    const access = input.accessToken === undefined ? undefined : await this.verifyOrUndefined(input.accessToken, now);
    if (input.allSessions) {
      // A revoked token (stolen, then logged out or reset) must not keep logging its victim out everywhere.
      if (!access || (await this.#isRevoked(access))) {
        throw new GatewayError('UNAUTHORIZED', { headers: { 'www-authenticate': INVALID_TOKEN_CHALLENGE } });
      }
      await this.#logoutEverywhere(access.userId, now, about);
    } else if (input.refreshToken !== undefined && isWellFormedRefreshToken(input.refreshToken)) {
      await this.#d.store.revokeFamilyOf(hashRefreshToken(input.refreshToken), new Date(now));
    }
    // Revoked last: when the KV store is down the client gets 503 and retries, and the steps above are idempotent.
    // Kept until the token stops being accepted (exp + clock tolerance), not merely until exp.
    if (access === undefined) {
      // nothing presented to revoke
    } else if (input.allSessions) {
      await this.#d.kv.revoke(access.tokenId, this.#d.tokens.acceptedUntil(access));
    } else if (!(await this.#isRevoked(access))) {
      // Written to the change log too (a logout of every session is there already, as the user's `logout`): the
      // memory store forgets it at a restart, and other gateways on this user store have memory stores of their
      // own. Not again for a token already refused, so repeating a logout does not grow the log.
      await this.#d.store.recordChange({ actor: 'user', action: TOKEN_REVOCATION, targetId: access.tokenId, at: new Date(now) });
      await this.#d.kv.revoke(access.tokenId, this.#d.tokens.acceptedUntil(access));
    }
    this.#events.record('logout');
  }

  /**
   * The proxy's revocation check (its jti, its user's revocations up to its issue time, ms); KvUnavailableError
   * propagates (503).
   */
  async #isRevoked(access: AccessTokenClaims): Promise<boolean> {
    return this.#d.kv.isRevoked(access.tokenId, userSubject(access.userId), access.issuedAt, access.generation);
  }

  /**
   * Revokes every session of the user and, as the admin API's logout does, every access token issued to it so far:
   * the other sessions' access tokens would otherwise live on for up to their whole lifetime. The store raises the
   * user's token generation under the user's lock, so every access token issued before (any host, any clock) carries
   * a lower one and is refused, and a login that waited for that lock carries the new one and is accepted. The time
   * is still written, for tokens issued before generations existed. It goes into the change log as well, as an
   * operator's logout does: a memory revocation store is lost on restart and is not shared with another gateway on
   * the same user store, and both re-apply the log.
   */
  async #logoutEverywhere(userId: string, now: number, about: RequestFacts | undefined): Promise<void> {
    // The store stamps the time and raises the generation under the user's row lock.
    const { revoked, at, generation } = await this.#d.store.revokeAllForUser(userId, new Date(now));
    const revokedAt = Math.max(now, at.getTime());
    const stamped = generation === undefined ? {} : { generation };
    await this.#d.store.recordChange({ actor: 'user', action: 'logout', targetId: userId, at: new Date(revokedAt), ...stamped });
    await this.#d.kv.revokeSubject(userSubject(userId), revokedAt, this.#d.tokens.acceptWindowMs, generation);
    this.#d.logger.info({ ...about, user_id: userId, revoked }, EVENTS.allSessionsRevoked);
  }

  /** The claims of a valid access token, or undefined (expired, forged, wrong type…). */
  async verifyOrUndefined(token: string, now: number = this.#now()): Promise<AccessTokenClaims | undefined> {
    try {
      return await this.#d.tokens.verify(token, now);
    } catch (err) {
      if (err instanceof TokenError) return undefined;
      throw err;
    }
  }

  /**
   * Stores the session, only while `passwordHash` is still the user's and the user enabled (the store checks under
   * its lock): the password was verified against a row read before the hash, and a reset or disable that committed
   * since must not be outlived by this session. The access token's time is the store's, read under the user's lock:
   * a user action that commits after this session (and stamps its time after its locks) revokes it too, and one that
   * committed while this waited for the lock (a log-out everywhere) stamped an earlier time, so the token it gets
   * here is accepted. A time read before the store call was refused by that log-out. Undefined when the
   * store refused the session; the caller decides what that means (login: see #startSessionAgainstCurrent).
   */
  async #startSession(user: UserRecord, passwordHash: string): Promise<Session | undefined> {
    const now = this.#now();
    const first = this.#firstToken(user.id, now);
    const stored = await this.#d.store.createRefreshToken(first.record, { passwordHash });
    return stored === undefined ? undefined : this.#session(user, now, stored, first);
  }

  /** A new session's refresh token (`refreshToken`, given to the client) and its stored record, for `userId`. */
  #firstToken(userId: string, now: number): FirstToken {
    const refreshToken = generateRefreshToken();
    const maxMs = this.#d.sessionMaxMs ?? 0;
    const ttlMs = maxMs > 0 ? Math.min(this.#d.refreshTokenTtlMs, maxMs) : this.#d.refreshTokenTtlMs;
    const record: NewRefreshToken = {
      id: randomUUID(),
      userId,
      familyId: randomUUID(),
      tokenHash: hashRefreshToken(refreshToken),
      expiresAt: new Date(now + ttlMs),
      ...(maxMs > 0 ? { sessionExpiresAt: new Date(now + maxMs) } : {}),
    };
    return { refreshToken, record, endsAt: maxMs > 0 ? now + maxMs : undefined };
  }

  /** The session the client gets once its first token is stored: an access token issued under the stored start. */
  async #session(user: UserRecord, now: number, stored: SessionStart, first: FirstToken): Promise<Session> {
    const access = await this.#d.tokens.issue(user, Math.max(now, stored.issuedAt.getTime()), stored.generation, first.endsAt);
    return {
      userId: user.id,
      email: user.email,
      accessToken: access.token,
      refreshToken: first.refreshToken,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
    };
  }

  /**
   * Replaces the verified hash with one in the current parameters and returns the hash the user now has: the new one,
   * or the verified one when it could not be replaced. Only while the stored hash is still the verified one: a reset
   * that committed meanwhile must not be overwritten by a hash of the old password (the session then fails, see
   * #startSession), and neither must a concurrent login's re-hash (login then retries against that one, see
   * #startSessionAgainstCurrent). Best effort: a failed re-hash must not fail a login whose password was right; the
   * next tries again.
   */
  async #rehash(user: UserRecord, password: string): Promise<string> {
    try {
      const fresh = await this.#d.passwords.hash(password);
      return (await this.#d.store.updatePasswordHash(user.id, fresh, user.passwordHash)) ? fresh : user.passwordHash;
    } catch (err) {
      this.#d.logger.warn({ userId: user.id, cause: describeCause(err) }, 'password re-hash failed');
      return user.passwordHash;
    }
  }
}

/** Shorthand for `new AuthService(deps)`. */
export function createAuthService(deps: AuthServiceDeps): AuthService {
  return new AuthService(deps);
}
