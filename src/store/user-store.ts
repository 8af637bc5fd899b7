// UserStore: the users and refresh-token sessions, in domain verbs. Adapters: SQLite (default) and PostgreSQL.
import type {
  AdminAction,
  ApiKeyPage,
  ApiKeyQuery,
  ApiKeyRecord,
  ChangeInput,
  ChangeRecord,
  IdentityTotals,
  NewApiKey,
  UserPage,
  UserQuery,
  UserSummary,
} from './identity-types.js';

export interface UserRecord {
  readonly id: string;
  /** Trimmed and lower-cased. */
  readonly email: string;
  readonly passwordHash: string;
  readonly createdAt: Date;
  /** When an operator disabled the account; null while it is enabled. */
  readonly disabledAt: Date | null;
}

/** A new refresh token: only its SHA-256 hash is stored. `familyId` groups the tokens of one login session. */
export interface NewRefreshToken {
  readonly id: string;
  readonly userId: string;
  readonly familyId: string;
  readonly tokenHash: string;
  readonly expiresAt: Date;
  /**
   * When the session ends whatever its refreshes (jwt.refresh_token_absolute_expiration): every token rotated from
   * this one carries it, and none expires after it. Undefined: no limit.
   */
  readonly sessionExpiresAt?: Date;
}

/** What a new session's user must still be (see createRefreshToken). */
export interface SessionExpectation {
  /** The hash the login verified the password against (or register stored). */
  readonly passwordHash: string;
}

/** What revokeAllForUser did: how many tokens it revoked, and the revocation time it stamped after its locks. */
export interface SessionsRevoked {
  readonly revoked: number;
  /**
   * The later of the caller's `now` and the store's clock read once the user's row and sessions are locked: tokens
   * issued at or before it are to be refused (a login that waited for this commit reads its time later).
   */
  readonly at: Date;
  /**
   * The user's token generation, raised under those locks: access tokens issued before carry a lower one and are
   * refused by it (see SessionStart). Undefined when the user does not exist.
   */
  readonly generation?: number;
}

/**
 * A stored session's start, read under the user's lock: the time and the token generation to issue its access token
 * with. A revoking action (log-out everywhere, disable, reset, delete) raises the generation under the same lock, so
 * a session that committed before it carries a lower generation (refused), one that waited for it the raised one
 * (accepted), whatever the clocks of the hosts involved.
 */
export interface SessionStart {
  readonly issuedAt: Date;
  readonly generation: number;
}

/**
 * How long a new session waits before taking its issue time, given the latest revocation time stamped on the user's
 * tokens (`latestRevokedMs`, or null) and the clock read under the user's lock. Revocations refuse tokens issued at or
 * before their time, so a login that comes after one stamped in this very millisecond (a log-out everywhere, then a
 * login at once) would have its first access token refused: it waits the millisecond out instead, outside the lock,
 * and tries again. A time further ahead is not waited for (a caller's clock ahead of this one): 0 then, as for none.
 */
export function sessionWaitMs(latestRevokedMs: number | null, nowMs: number): number {
  if (latestRevokedMs === null || latestRevokedMs < nowMs || latestRevokedMs - nowMs > SAME_MOMENT_MS) return 0;
  return latestRevokedMs - nowMs + 1;
}

/** The furthest a revocation time may lie ahead of the clock for a new session to wait for it (sessionWaitMs). */
const SAME_MOMENT_MS = 5;

/** How many times a new session waits for a revocation of the same moment before it takes the time it has. */
export const SESSION_WAIT_ATTEMPTS = 3;

/**
 * How far a rotation may lie ahead of the clock that judges its reuse and still count as within the grace period, ms:
 * the 5 s the gateways' clocks may differ by (README, Authentication). Another gateway whose clock is ahead may have
 * rotated the token "later" than now by that much while a concurrent refresh here presents it.
 */
export const ROTATION_CLOCK_TOLERANCE_MS = 5_000;

/**
 * True when a token rotated at `rotatedAtMs` (the rotating gateway's clock, stored with the token) and presented again
 * is a concurrent refresh, refused without side effects, rather than a reuse. Only `graceMs` after the rotation, by
 * `presentedAtMs` (this gateway's clock when the refresh arrived), and at most ROTATION_CLOCK_TOLERANCE_MS before it by
 * `decidedAtMs` (this clock read again once the store holds the family's lock, so after the rotation committed): a
 * rotation further in the future means this clock was stepped back (NTP, a restored snapshot) or is off, and judged by
 * the raw difference, negative and so "within the grace period", a stolen refresh token replayed then revoked nothing
 * for as long as the step. The lower bound is not judged by `presentedAtMs`: a refresh that waited for a pool
 * connection or a lock after it read the clock (a second, say, on a gateway 4.5 s behind the one that rotated the token
 * for the client's retry meanwhile) looked more than the tolerance before the rotation, and as a reuse revoked the
 * session whose new token the client had just been given.
 */
export function withinReuseGrace(presentedAtMs: number, decidedAtMs: number, rotatedAtMs: number, graceMs: number): boolean {
  return presentedAtMs - rotatedAtMs < graceMs && Math.max(presentedAtMs, decidedAtMs) - rotatedAtMs > -ROTATION_CLOCK_TOLERANCE_MS;
}

/** Outcome of presenting a refresh token for rotation. */
export type RotationResult =
  /** The token was live: it is now revoked and replaced by `next`, in one transaction. */
  | {
      readonly kind: 'rotated';
      readonly user: UserRecord;
      readonly familyId: string;
      readonly generation: number;
      /** The session's absolute end, if it has one (its access tokens expire no later). */
      readonly sessionExpiresAt?: Date;
    }
  /** The token had been rotated within the grace period: nothing changed, the request is refused. */
  | { readonly kind: 'grace' }
  /** The token had been rotated before: reuse detected, its whole family is now revoked. */
  | { readonly kind: 'reused'; readonly userId: string; readonly familyId: string }
  /** Unknown, expired, or revoked by logout. */
  | { readonly kind: 'invalid' };

/** The store is unreachable or failed; the HTTP layer answers 503 with Retry-After. Carries no SQL or driver text. */
export class StoreUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('user store unavailable', options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The store is absent or not migrated, and the caller may not create or migrate it (every command but `start` and
 * `migrate`: a typo in PORTCULLIS_DATA_DIR must not quietly make a new, empty user store). `message` says where and
 * what to run; it names a SQLite file's path, never a database URL.
 */
export class StoreNotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreNotReadyError';
  }
}

/** The `checkMigrated` refusal for a store at `where` whose schema is at `current` (undefined: none) of `latest`. */
export function notMigratedError(where: string, current: number | undefined, latest: number): StoreNotReadyError {
  const state = current === undefined ? 'has no schema' : `is at schema version ${current}, this version needs ${latest}`;
  return new StoreNotReadyError(`the user store ${where} ${state}: run "portcullis migrate" first`);
}

/**
 * The refusal of a store at `where` whose schema is at `current`, past the `latest` this build knows: written by a newer
 * Portcullis (a downgrade, or a file copied from a newer gateway). Served as current, its tables would be read and
 * written in a shape this build does not know; and migrating it would mark it older than it is.
 */
export function newerSchemaError(where: string, current: number, latest: number): StoreNotReadyError {
  return new StoreNotReadyError(`the user store ${where} ${newerSchemaWords(current, latest)}`);
}

/** newerSchemaError's words after "the user store <where>" (check-config says them of the file's header too). */
export function newerSchemaWords(current: number, latest: number): string {
  return `is at schema version ${current}, newer than this build knows (${latest}): run the Portcullis version that wrote it, or restore a backup taken before the upgrade`;
}

/** createUser with an email that already exists. */
export class EmailTakenError extends Error {
  constructor() {
    super('email already registered');
    this.name = 'EmailTakenError';
  }
}

/**
 * Users and sessions. Every method either succeeds, throws EmailTakenError (createUser), or throws
 * StoreUnavailableError; driver errors never escape an adapter.
 */
export interface UserStore {
  /** Applies pending numbered migrations; safe to call on every start and from several processes at once. */
  migrate(): Promise<void>;
  /**
   * With `change`, its change-log row in the same transaction: an admin create that failed between the two left the
   * account in place with no change row or audit line, its caller answered 503 and its retry 409.
   */
  createUser(user: { id: string; email: string; passwordHash: string }, change?: ChangeInput): Promise<UserRecord>;
  /**
   * createUser and the first token of its session (`token.userId` is `user.id`) in one transaction: a registration
   * the store failed half-way left an account without a session, its client answered 503 and its retry 409.
   * Throws EmailTakenError as createUser does.
   */
  registerUser(user: { id: string; email: string; passwordHash: string }, token: NewRefreshToken): Promise<{ user: UserRecord; start: SessionStart }>;
  findUserByEmail(email: string): Promise<UserRecord | undefined>;
  findUserById(id: string): Promise<UserRecord | undefined>;
  /**
   * Replaces the hash (re-hash with current argon2 parameters after a successful login). With `previousHash`, only
   * while the stored hash is still that one: a re-hash of the password a login verified must not undo a password
   * reset that committed meanwhile. True when replaced.
   */
  updatePasswordHash(userId: string, passwordHash: string, previousHash?: string): Promise<boolean>;
  /**
   * Stores the first token of a new session (login, register) and records the user's last login time; true when
   * stored. With `expected`, only while the user is enabled and still has that password hash, checked under the
   * user's row lock (PostgreSQL) or the write lock (SQLite): a login that verified a password a reset or disable has
   * replaced since gets no session (undefined), and one that commits first is revoked by that reset or disable.
   * Resolves with the session's issue time and token generation, read under that lock (SessionStart). A log-out,
   * reset or disable that held the lock first raised the generation before, so that token is not refused by it.
   */
  createRefreshToken(token: NewRefreshToken, expected?: SessionExpectation): Promise<SessionStart | undefined>;
  /**
   * Atomically revokes the live token with `tokenHash` and inserts `next` in its family (`next.familyId` and
   * `next.userId` are ignored; the old token's are used, and so is its session's end: `next` expires at
   * `next.expiresAt` or then, whichever comes first; a session without an end (started before schema 10, or rotated by
   * an older gateway) takes `next.sessionExpiresAt` as its end from now on). A disabled user's token gives 'invalid' and changes
   * nothing. Of two concurrent calls with the same hash, exactly one gets 'rotated', with the user's token generation
   * read after the family's lock (a revoking action holding it raised it first and then revoked the new token too). A token rotated less than `graceMs` ago gives 'grace' (withinReuseGrace: never one rotated more than the clock tolerance in this clock's future); other reuse revokes the family ('reused').
   */
  rotateRefreshToken(
    tokenHash: string,
    next: Omit<NewRefreshToken, 'userId' | 'familyId'>,
    now: Date,
    graceMs: number,
  ): Promise<RotationResult>;
  /** Revokes the session (family) that `tokenHash` belongs to. Returns its user id, or undefined if unknown. */
  revokeFamilyOf(tokenHash: string, now: Date): Promise<{ userId: string } | undefined>;
  /**
   * Revokes every session of a user (logout everywhere), under the user's row lock as createRefreshToken takes it.
   * Returns how many tokens were revoked, the revocation time stamped after the locks, and the user's token generation
   * raised under them (see SessionsRevoked). The generation refuses every earlier session from the commit on; the
   * SQLite adapter then revokes their rows a step at a time before it resolves (as for the revoking user actions
   * below, and a delete's sessions), so its event loop is never held by one statement over all of them.
   */
  revokeAllForUser(userId: string, now: Date): Promise<SessionsRevoked>;
  /**
   * Deletes tokens that expired before `now`, at most `limit` of them when given (the janitor's batches: one DELETE of
   * a million rows held SQLite's event loop for seconds, and outlived PostgreSQL's statement timeout). Returns how many.
   */
  deleteExpired(now: Date, limit?: number): Promise<number>;

  // --- Identity operations (admin API and CLI). Each action writes `change` to the change log in its transaction;
  // the user actions (setUserDisabled, logoutUser, resetPassword, deleteUser) stamp its `at` there, after their locks
  // (stampChange), so a revocation up to that time covers every session committed before; the revoking ones also
  // raise the user's token generation there and record it as the change's `generation`.

  /** Users newest first, filtered by email prefix; keyset pagination, so concurrent inserts never shift a page. */
  listUsers(query: UserQuery, now: Date): Promise<UserPage>;
  /** One user as the admin API shows it, or undefined. */
  getUserSummary(id: string, now: Date): Promise<UserSummary | undefined>;
  /**
   * Disables (revoking every session) or enables the user. Returns the updated user, or undefined when unknown.
   * Disabling an already disabled user keeps its first `disabledAt`.
   */
  setUserDisabled(id: string, disabled: boolean, change: ChangeInput): Promise<UserRecord | undefined>;
  /** Revokes every session of the user; false when the user is unknown. */
  logoutUser(id: string, change: ChangeInput): Promise<boolean>;
  /** Replaces the hash and revokes every session; false when the user is unknown. */
  resetPassword(id: string, passwordHash: string, change: ChangeInput): Promise<boolean>;
  /** Deletes the user and (cascading) every session; false when unknown. */
  deleteUser(id: string, change: ChangeInput): Promise<boolean>;
  /** Appends an action that has no row of its own to update (user creation) to the change log. */
  recordChange(change: ChangeInput): Promise<void>;
  /** The dashboard's totals. */
  identityTotals(now: Date): Promise<IdentityTotals>;

  createApiKey(key: NewApiKey, change: ChangeInput): Promise<ApiKeyRecord>;
  /** The key whose secret hashes to `keyHash`, revoked or not (the caller checks), or undefined. */
  findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined>;
  /**
   * Keys not revoked (expired ones included), newest first; keyset pagination over an index of live keys (schema
   * version 9), so a page costs its own rows however many keys there are.
   */
  listApiKeys(query: ApiKeyQuery): Promise<ApiKeyPage>;
  /** Revokes the key; false when unknown or already revoked. */
  revokeApiKey(id: string, change: ChangeInput): Promise<boolean>;
  /** Stores last-used times gathered off the request path (one statement per key, latest time wins). */
  recordApiKeyUse(uses: ReadonlyMap<string, Date>): Promise<void>;

  /** Change-log rows with `seq > afterSeq` and `at >= notBefore`, in seq order, at most `limit`. One indexed query. */
  readChanges(afterSeq: number, notBefore: Date, limit: number): Promise<readonly ChangeRecord[]>;
  /**
   * The latest change-log row of `action` on `targetId` at or after `notBefore`, or undefined. A retried delete or
   * key revocation finds the row its first attempt committed, so it can retry the revocation that failed then.
   */
  lastChange(targetId: string, action: AdminAction, notBefore: Date): Promise<ChangeRecord | undefined>;
  /**
   * Marks the latest change-log `delete` of user `targetId` with `emailDigest` (the digest of the email it was
   * addressed by) while its revocation is pending, or, with null, clears that mark from its deletes. The email went with
   * the user's row, so this is how a delete repeated by email in another process (the CLI) finds the user it retries.
   */
  markPendingDelete(targetId: string, emailDigest: string | null): Promise<void>;
  /** The latest `delete` marked with `emailDigest` (markPendingDelete) at or after `notBefore`, or undefined. */
  findPendingDelete(emailDigest: string, notBefore: Date): Promise<ChangeRecord | undefined>;
  /**
   * Deletes change-log rows older than `before`, and the single-session logouts (TOKEN_REVOCATION) older than
   * `tokenRevocationsBefore` when given: those are only needed while the token could be accepted. Returns how many.
   * Clears the email digests of pending deletes (markPendingDelete) older than `tokenRevocationsBefore` too. At most
   * `limit` rows are deleted when given (the janitor's batches, as deleteExpired).
   */
  pruneChanges(before: Date, tokenRevocationsBefore?: Date, limit?: number): Promise<number>;

  /** Resolves when the store answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
