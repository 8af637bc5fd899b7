// The records behind identity operations (admin listing, API keys, the change log); shared by both adapters.

/** Who made an admin action: the admin API (`admin`) or the command line (`cli`). */
export type AdminActor = 'admin' | 'cli';

/**
 * Who made a change-log row: an operator (AdminActor), or the user itself (`user`: POST /auth/logout with
 * `all_sessions`, which must reach other gateways and survive a restart as an operator's logout does).
 */
export type ChangeActor = AdminActor | 'user';

/** Every admin action, as logged (`admin_action`), counted and kept in the change log. */
export const ADMIN_ACTIONS = [
  'create_user',
  'disable',
  'enable',
  'logout',
  'delete',
  'set_password',
  'create_api_key',
  'revoke_api_key',
] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** Actions after which a running gateway must refuse credentials issued before `at` (see ChangePoller). */
export const USER_REVOKING_ACTIONS: ReadonlySet<ChangeAction> = new Set(['disable', 'logout', 'delete', 'set_password']);

/**
 * A user's logout of one session (POST /auth/logout without `all_sessions`): its access token, by id, refused until
 * it expires. Kept in the change log so that a memory-store gateway restarted after the logout, and other gateways
 * on the same user store, refuse it too; not an admin action (never counted, audited or listed as one), and pruned
 * once the token cannot be accepted any more (SessionJanitor).
 */
export const TOKEN_REVOCATION = 'revoke_token';

/** What a change-log row records: an admin action, or a single session's logout. */
export type ChangeAction = AdminAction | typeof TOKEN_REVOCATION;

/** True for the rows that record admin actions (what the dashboard lists and the metrics count). */
export function isAdminAction(action: ChangeAction): action is AdminAction {
  return action !== TOKEN_REVOCATION;
}

/** One change to record in the change log; an admin action's is written in the same transaction as the action. */
export interface ChangeInput {
  readonly actor: ChangeActor;
  readonly action: ChangeAction;
  /** The user id or API key id acted on; for TOKEN_REVOCATION, the access token's id (`jti`, not a credential). */
  readonly targetId: string;
  /**
   * When the action happened (the acting process's clock); credentials issued at or before it are revoked. For the
   * user actions (disable, enable, logout, delete, set_password) this is a lower bound: the store records the later of
   * it and its own clock read inside the transaction once the user's row and sessions are locked (see stampChange).
   */
  readonly at: Date;
  /**
   * For the actions that revoke every token of a user (disable, logout, set_password, delete, and a user's own log-out
   * everywhere): the user's token generation after it, set by the store, which raises it in the action's transaction.
   * Access tokens issued before carry a lower one and are refused by it, whatever the clocks of the hosts say.
   * Undefined for other actions, for rows written before generations existed, and for a user already gone.
   */
  readonly generation?: number;
}

/** A change-log row's input for an admin action. */
export interface AdminChangeInput extends ChangeInput {
  readonly action: AdminAction;
}

/**
 * `change` with `at` read now, inside the action's transaction after its locks: every rotation or login that
 * committed a session before those locks took its token's issue time earlier still, so revoking up to this `at`
 * covers it. A time taken by the caller before the transaction (worse, before hashing a new password) let a token
 * issued in between outlive the action. The caller's `at` is kept when later (a test's clock ahead of this one).
 */
export function stampChange(change: ChangeInput): ChangeInput {
  return { ...change, at: new Date(Math.max(change.at.getTime(), Date.now())) };
}

/** A change-log row. `seq` grows in commit order, so a reader that remembers the last seq misses nothing. */
export interface ChangeRecord extends ChangeInput {
  readonly seq: number;
}

/** A user as the admin API shows it: never the hash. */
export interface UserSummary {
  readonly id: string;
  readonly email: string;
  readonly createdAt: Date;
  readonly lastLoginAt: Date | null;
  readonly disabled: boolean;
  /** Live sessions (refresh-token families with an unrevoked, unexpired token). */
  readonly activeSessions: number;
}

/** One page of users, newest first. `nextCursor` is opaque; null on the last page. */
export interface UserPage {
  readonly users: readonly UserSummary[];
  readonly nextCursor: string | null;
}

/** What listUsers filters and pages by. */
export interface UserQuery {
  /** Lower-cased email prefix; empty or absent for every user. */
  readonly emailPrefix?: string;
  /** From a previous page's `nextCursor`. A cursor the adapter cannot read throws InvalidCursorError. */
  readonly cursor?: string;
  /** 1..100. */
  readonly limit: number;
}

/** A cursor that was not made by listUsers (the admin API answers 400). */
export class InvalidCursorError extends Error {
  constructor() {
    super('invalid cursor');
    this.name = 'InvalidCursorError';
  }
}

/** A new API key: only the SHA-256 of its secret part is stored. */
export interface NewApiKey {
  readonly id: string;
  readonly name: string;
  readonly keyHash: string;
  readonly expiresAt: Date | null;
}

/** A stored API key. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

/** One page of API keys not revoked, newest first. `nextCursor` is opaque; null on the last page. */
export interface ApiKeyPage {
  readonly apiKeys: readonly ApiKeyRecord[];
  readonly nextCursor: string | null;
}

/** What listApiKeys pages by. */
export interface ApiKeyQuery {
  /** From a previous page's `nextCursor`. A cursor the adapter cannot read throws InvalidCursorError. */
  readonly cursor?: string;
  /** 1..100. */
  readonly limit: number;
}

/**
 * The key id of an API-key cursor (its tie-break), as generateApiKey makes ids: anything else is no cursor listApiKeys
 * made (a users cursor, a typo), refused as InvalidCursorError rather than read as a position.
 */
export function apiKeyCursorId(tieBreak: string): string {
  if (!/^[0-9a-f]{16}$/.test(tieBreak)) throw new InvalidCursorError();
  return tieBreak;
}

/** The dashboard's totals. */
export interface IdentityTotals {
  readonly users: number;
  readonly disabled: number;
  readonly activeSessions: number;
  /** Live keys: not revoked, not expired. */
  readonly apiKeys: number;
}

/**
 * Opaque cursor text for a (sort key, tie-break) position; each adapter decides what they mean (PostgreSQL: creation
 * time in microseconds and the user id; SQLite: creation time in milliseconds and the rowid).
 */
export function encodeCursor(key: string, tieBreak: string): string {
  return Buffer.from(JSON.stringify([key, tieBreak])).toString('base64url');
}

/**
 * The sort key of a cursor as a number no larger than `max` (the adapter's unit for the latest time a JavaScript Date
 * can hold: 8.64e15 ms, 8.64e18 µs); InvalidCursorError beyond it. A larger key is no cursor listUsers made, and in
 * PostgreSQL it would overflow bigint or timestamptz: a driver error, answered as an outage.
 */
export function cursorKeyAtMost(key: string, max: bigint): string {
  if (BigInt(key) > max) throw new InvalidCursorError();
  return key;
}

/** The latest time a JavaScript Date can hold, in ms: a later expiry or cursor position is no real one. */
export const MAX_DATE_MS = 8.64e15;

/**
 * Refuses an API key expiry that is not a valid date (an overflowing duration gives an Invalid Date, which SQLite
 * would store as NULL, a key that never expires, and PostgreSQL refuse with a driver error). A RangeError: callers
 * validate durations first, so this is a programming error, and nothing is stored.
 */
export function assertValidExpiry(expiresAt: Date | null): void {
  if (expiresAt !== null && Number.isNaN(expiresAt.getTime())) throw new RangeError('API key expiry is not a valid date');
}

/** The (sort key, tie-break) inside a cursor; throws InvalidCursorError for anything listUsers did not make. */
export function decodeCursor(cursor: string): { key: string; tieBreak: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && /^\d{1,20}$/.test(value[0]) && typeof value[1] === 'string' && value[1].length <= 64) {
      return { key: value[0], tieBreak: value[1] };
    }
  } catch {
    // falls through
  }
  throw new InvalidCursorError();
}

/** Escapes LIKE wildcards so an email prefix matches literally (escape character `\`). */
export function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
}
