// The identity operations of the SQLite UserStore (admin listing, disable, API keys, change log), in plain SQL.
import type Database from 'better-sqlite3';
import {
  apiKeyCursorId,
  cursorKeyAtMost,
  decodeCursor,
  encodeCursor,
  InvalidCursorError,
  MAX_DATE_MS,
  stampChange,
  TOKEN_REVOCATION,
  type AdminAction,
  type ApiKeyPage,
  type ApiKeyQuery,
  type ApiKeyRecord,
  type ChangeInput,
  type ChangeRecord,
  type IdentityTotals,
  type NewApiKey,
  type UserPage,
  type UserQuery,
  type UserSummary,
} from './identity-types.js';
import { JANITOR_BATCH } from './janitor.js';

/** What the queries borrow from SqliteUserStore: its prepared-statement cache and its transaction helper. */
export interface SqliteAccess {
  stmt(sql: string): Database.Statement;
  /** Runs `step` in a BEGIN IMMEDIATE transaction. */
  immediate<T>(step: () => T): T;
}

interface SummaryRow {
  /** The rowid: the tie-break between users created in the same millisecond (see migration 4). */
  row: number;
  id: string;
  email: string;
  created_at: number;
  last_login_at: number | null;
  disabled_at: number | null;
  active_sessions: number;
}

interface ApiKeyRow {
  id: string;
  name: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

interface ChangeRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target_id: string;
  generation: number | null;
}

function toChange(r: ChangeRow): ChangeRecord {
  return {
    seq: r.seq,
    at: new Date(r.at),
    actor: r.actor as ChangeRecord['actor'],
    action: r.action as ChangeRecord['action'],
    targetId: r.target_id,
    ...(r.generation === null ? {} : { generation: r.generation }),
  };
}

/**
 * Raises the user's token generation and returns the new one (undefined for an unknown user). Call inside a write
 * transaction: a login waiting for the write lock reads the raised one, a session committed before holds a lower one.
 */
export function raiseGeneration(db: Pick<SqliteAccess, 'stmt'>, userId: string): number | undefined {
  const row = db.stmt('UPDATE users SET token_generation = token_generation + 1 WHERE id = ? RETURNING token_generation').get(userId);
  return (row as { token_generation: number } | undefined)?.token_generation;
}

/**
 * Rows one step of a user's session sweep revokes or deletes: a janitor step's worth (about 10 ms on the event loop).
 * One UPDATE of a user's 100,000 sessions (a log-out everywhere) or their cascade (a delete) held every request of the
 * process 0.3-1 s.
 */
export const SESSION_SWEEP_BATCH = JANITOR_BATCH;

/**
 * What a revoking action (log-out everywhere, disable, password reset) leaves to its sweep: the generation it raised
 * the user to (every session issued below it is refused from that commit on, whether its row is revoked yet or not),
 * the time to stamp on the rest, and how many its own transaction revoked (at most SESSION_SWEEP_BATCH).
 */
export interface SessionSweep {
  readonly userId: string;
  readonly generation: number;
  readonly at: number;
  readonly revoked: number;
}

/**
 * Revokes at most `limit` of the user's live sessions issued below `generation` (their rows' generation, migration 9)
 * and returns how many: the sessions a revoking action raised the generation past. A session started since (a login
 * after the action) holds the new generation and is left alone.
 */
export function revokeSessionsBelow(db: Pick<SqliteAccess, 'stmt'>, userId: string, generation: number, at: number, limit: number): number {
  return db
    .stmt(
      `UPDATE refresh_tokens SET revoked_at = :at WHERE rowid IN (
         SELECT rowid FROM refresh_tokens WHERE user_id = :user AND revoked_at IS NULL AND generation < :generation LIMIT :limit)`,
    )
    .run({ at, user: userId, generation, limit }).changes;
}

/**
 * Live sessions of the user `u.id` at `?` (named :now): one per refresh-token family with a live token. Not one a
 * revoking action refused whose row its sweep has not reached yet (below the user's generation).
 */
const ACTIVE_SESSIONS = `(SELECT COUNT(DISTINCT family_id) FROM refresh_tokens r
  WHERE r.user_id = u.id AND r.revoked_at IS NULL AND r.expires_at > :now AND r.generation = u.token_generation) AS active_sessions`;
const SUMMARY_COLUMNS = `u.rowid AS row, u.id, u.email, u.created_at, u.last_login_at, u.disabled_at, ${ACTIVE_SESSIONS}`;

/** The rowid a cursor made by listUsers carries; anything else (a cursor from before migration 4 too) is invalid. */
function rowOf(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new InvalidCursorError();
  return Number(text);
}

/**
 * An email prefix matching at most this many users has them read through the email index and sorted (a few ms at
 * most); one matching more is found by walking the creation index, where a page of them comes soon.
 */
const FEW_MATCHES = 5_000;

/** The identity half of the SQLite adapter; every method runs synchronously inside the caller's error mapping. */
export class SqliteIdentity {
  readonly #db: SqliteAccess;

  constructor(access: SqliteAccess) {
    this.#db = access;
  }

  listUsers(query: UserQuery, now: Date): UserPage {
    const prefix = query.emailPrefix ?? '';
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const params = {
      now: now.getTime(),
      prefix,
      cursorAt: cursor === undefined ? 0 : Number(cursorKeyAtMost(cursor.key, BigInt(MAX_DATE_MS))),
      cursorRow: cursor === undefined ? 0 : rowOf(cursor.tieBreak),
      limit: query.limit + 1,
    };
    const rows = this.#db.stmt(this.#listUsersSql(prefix, cursor !== undefined)).all(params) as SummaryRow[];
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return {
      users: page.map(toSummary),
      nextCursor: more && last ? encodeCursor(String(last.created_at), String(last.row)) : null,
    };
  }

  /**
   * The statement of one users page, chosen so that SQLite never walks the whole table on the event loop. One
   * statement with `:prefix = '' OR …` and `:cursorAt IS NULL OR …` could use no index for either: SQLite walked the
   * creation index filtering every user (200 ms a search that matched nothing at 10^6 users, with proxied requests
   * waiting behind it) and could not seek to a cursor (a deep page read every newer user first). Newest first,
   * through the creation index, seeking to the cursor; with an email prefix matching a few users (a binary range on
   * the unique email index: emails are stored lower-cased), those users sorted; with one matching many, the creation
   * index filtered, which finds a page among them soon.
   */
  #listUsersSql(prefix: string, afterCursor: boolean): string {
    const before = afterCursor ? 'AND (u.created_at, u.rowid) < (:cursorAt, :cursorRow)' : '';
    const newestFirst = 'ORDER BY u.created_at DESC, u.rowid DESC LIMIT :limit';
    const inRange = "u.email >= :prefix AND u.email < :prefix || char(1114111)";
    if (prefix === '') return `SELECT ${SUMMARY_COLUMNS} FROM users u WHERE 1 ${before} ${newestFirst}`;
    const matches = (
      this.#db.stmt(`SELECT count(*) AS n FROM (SELECT 1 FROM users u WHERE ${inRange} LIMIT ${FEW_MATCHES + 1})`).get({ prefix }) as { n: number }
    ).n;
    // `+u.created_at`: not the creation index for the order (the planner's pick, which walked it all), the email range.
    if (matches <= FEW_MATCHES) return `SELECT ${SUMMARY_COLUMNS} FROM users u WHERE ${inRange} ${before} ORDER BY +u.created_at DESC, u.rowid DESC LIMIT :limit`;
    return `SELECT ${SUMMARY_COLUMNS} FROM users u INDEXED BY idx_users_created_at WHERE ${inRange} ${before} ${newestFirst}`;
  }

  getUserSummary(id: string, now: Date): UserSummary | undefined {
    const row = this.#db.stmt(`SELECT ${SUMMARY_COLUMNS} FROM users u WHERE u.id = :id`).get({ id, now: now.getTime() }) as
      | SummaryRow
      | undefined;
    return row ? toSummary(row) : undefined;
  }

  /**
   * Returns whether the user exists; the caller re-reads the record. Each user action stamps its time (stampChange)
   * first thing in its BEGIN IMMEDIATE transaction: it holds the write lock then, so every session written before
   * has committed.
   */
  /**
   * Whether the user exists, and for a disable the sweep its store finishes (revokeSessionsBelow, a step at a time);
   * the caller re-reads the record.
   */
  setUserDisabled(id: string, disabled: boolean, unstamped: ChangeInput): { found: boolean; sweep?: SessionSweep } {
    return this.#db.immediate(() => {
      const change = stampChange(unstamped);
      const at = change.at.getTime();
      const found = disabled
        ? this.#db.stmt('UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?').run(at, id).changes
        : this.#db.stmt('UPDATE users SET disabled_at = NULL WHERE id = ?').run(id).changes;
      if (found === 0) return { found: false };
      if (!disabled) {
        this.#append(change);
        return { found: true };
      }
      const sweep = this.#revokeSessions(id, at);
      this.#append({ ...change, generation: sweep.generation });
      return { found: true, sweep };
    });
  }

  /** The sweep its store finishes, or undefined for an unknown user. */
  logoutUser(id: string, unstamped: ChangeInput): SessionSweep | undefined {
    return this.#db.immediate(() => {
      const change = stampChange(unstamped);
      if (!this.#exists(id)) return undefined;
      const sweep = this.#revokeSessions(id, change.at.getTime());
      this.#append({ ...change, generation: sweep.generation });
      return sweep;
    });
  }

  /** The sweep its store finishes, or undefined for an unknown user. */
  resetPassword(id: string, passwordHash: string, unstamped: ChangeInput): SessionSweep | undefined {
    return this.#db.immediate(() => {
      const change = stampChange(unstamped);
      if (this.#db.stmt('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id).changes === 0) return undefined;
      const sweep = this.#revokeSessions(id, change.at.getTime());
      this.#append({ ...change, generation: sweep.generation });
      return sweep;
    });
  }

  /**
   * One step of a delete, in one transaction: removes at most SESSION_SWEEP_BATCH of the user's sessions and, once
   * fewer were left, the user (its change-log row written): 'deleted', or 'unknown' for no such user. With more left
   * it raises the user's generation, so every session still to go is refused from this commit on, and answers 'more':
   * the store pauses and steps again. The user is there meanwhile (a login may come in, and goes with the user).
   */
  deleteUserStep(id: string, unstamped: ChangeInput): 'deleted' | 'more' | 'unknown' {
    return this.#db.immediate(() => {
      const removed = this.#db
        .stmt('DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens WHERE user_id = ? LIMIT ?)')
        .run(id, SESSION_SWEEP_BATCH).changes;
      if (removed === SESSION_SWEEP_BATCH) return raiseGeneration(this.#db, id) === undefined ? 'unknown' : 'more';
      const change = stampChange(unstamped);
      // Raised before the row goes: the change log keeps it, and revocations refuse the user's tokens by it.
      const generation = raiseGeneration(this.#db, id);
      if (generation === undefined) return 'unknown';
      // What sessions are left (fewer than a step's worth, logins since the first step included) go with it (ON DELETE
      // CASCADE).
      if (this.#db.stmt('DELETE FROM users WHERE id = ?').run(id).changes === 0) return 'unknown';
      this.#append({ ...change, generation });
      return 'deleted';
    });
  }

  recordChange(change: ChangeInput): void {
    this.#append(change);
  }

  identityTotals(now: Date): IdentityTotals {
    const nowMs = now.getTime();
    const users = this.#db.stmt('SELECT COUNT(*) AS n, COUNT(disabled_at) AS d FROM users').get() as { n: number; d: number };
    // A family holds one unrevoked token at most (a rotation revokes the token it replaces in the same transaction),
    // so its live tokens are counted, through the partial index of migration 7, not DISTINCT families: that walked
    // every token by family_id on the event loop.
    const sessions = this.#db
      .stmt('SELECT COUNT(*) AS n FROM refresh_tokens INDEXED BY idx_refresh_tokens_live WHERE revoked_at IS NULL AND expires_at > ?')
      .get(nowMs) as { n: number };
    const keys = this.#db
      .stmt('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)')
      .get(nowMs) as { n: number };
    return { users: users.n, disabled: users.d, activeSessions: sessions.n, apiKeys: keys.n };
  }

  createApiKey(key: NewApiKey, change: ChangeInput): ApiKeyRecord {
    const createdAt = change.at.getTime();
    this.#db.immediate(() => {
      this.#db
        .stmt('INSERT INTO api_keys (id, name, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
        .run(key.id, key.name, key.keyHash, createdAt, key.expiresAt?.getTime() ?? null);
      this.#append(change);
    });
    return { id: key.id, name: key.name, createdAt: new Date(createdAt), expiresAt: key.expiresAt, lastUsedAt: null, revokedAt: null };
  }

  findApiKeyByHash(keyHash: string): ApiKeyRecord | undefined {
    const row = this.#db.stmt('SELECT * FROM api_keys WHERE key_hash = ?').get(keyHash) as ApiKeyRow | undefined;
    return row ? toApiKey(row) : undefined;
  }

  listApiKeys(query: ApiKeyQuery): ApiKeyPage {
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // Through the index of live keys (migration 9), newest first: a page reads its own rows. Every key at once, sorted
    // in full, held the event loop 0.5 s at 50,000 keys. Two statements rather than one with `:cursor IS NULL OR`: the
    // OR would keep SQLite from seeking to the cursor, and a deep page read every newer key first.
    const rows = (
      cursor === undefined
        ? this.#db
            .stmt('SELECT * FROM api_keys INDEXED BY idx_api_keys_live WHERE revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?')
            .all(query.limit + 1)
        : this.#db
            .stmt(
              `SELECT * FROM api_keys INDEXED BY idx_api_keys_live WHERE revoked_at IS NULL AND (created_at, id) < (?, ?)
               ORDER BY created_at DESC, id DESC LIMIT ?`,
            )
            .all(Number(cursorKeyAtMost(cursor.key, BigInt(MAX_DATE_MS))), apiKeyCursorId(cursor.tieBreak), query.limit + 1)
    ) as ApiKeyRow[];
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return { apiKeys: page.map(toApiKey), nextCursor: more && last ? encodeCursor(String(last.created_at), last.id) : null };
  }

  revokeApiKey(id: string, change: ChangeInput): boolean {
    return this.#db.immediate(() => {
      const changed = this.#db
        .stmt('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
        .run(change.at.getTime(), id).changes;
      if (changed === 0) return false;
      this.#append(change);
      return true;
    });
  }

  recordApiKeyUse(uses: ReadonlyMap<string, Date>): void {
    this.#db.immediate(() => {
      const update = this.#db.stmt('UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?');
      for (const [id, at] of uses) update.run(at.getTime(), id);
    });
  }

  readChanges(afterSeq: number, notBefore: Date, limit: number): ChangeRecord[] {
    // Before a first change is read (seq 0: a poller whose window has stayed quiet since it started), through the at
    // index: the window's few rows. The seq range from 0 walked every row the log keeps (days of actions, 53 ms at a
    // million rows), on the event loop, at every poll while the window stayed quiet. Past seq 0, the seq range starts
    // at the poller's last read: the new rows only.
    const rows = (
      afterSeq === 0
        ? this.#db
            .stmt('SELECT * FROM identity_changes INDEXED BY idx_identity_changes_at WHERE at >= ? AND seq > 0 ORDER BY seq LIMIT ?')
            .all(notBefore.getTime(), limit)
        : this.#db.stmt('SELECT * FROM identity_changes WHERE seq > ? AND at >= ? ORDER BY seq LIMIT ?').all(afterSeq, notBefore.getTime(), limit)
    ) as ChangeRow[];
    return rows.map(toChange);
  }

  lastChange(targetId: string, action: AdminAction, notBefore: Date): ChangeRecord | undefined {
    // The at index bounds the scan to the window (minutes of admin actions); no index on target_id is needed.
    const row = this.#db
      .stmt('SELECT * FROM identity_changes WHERE at >= ? AND target_id = ? AND action = ? ORDER BY seq DESC LIMIT 1')
      .get(notBefore.getTime(), targetId, action) as ChangeRow | undefined;
    return row === undefined ? undefined : toChange(row);
  }

  markPendingDelete(targetId: string, emailDigest: string | null): void {
    if (emailDigest === null) {
      this.#db
        .stmt("UPDATE identity_changes SET email_digest = NULL WHERE target_id = ? AND action = 'delete' AND email_digest IS NOT NULL")
        .run(targetId);
      return;
    }
    this.#db
      .stmt(
        "UPDATE identity_changes SET email_digest = ? WHERE seq = (SELECT max(seq) FROM identity_changes WHERE target_id = ? AND action = 'delete')",
      )
      .run(emailDigest, targetId);
  }

  findPendingDelete(emailDigest: string, notBefore: Date): ChangeRecord | undefined {
    const row = this.#db
      .stmt("SELECT * FROM identity_changes WHERE email_digest = ? AND at >= ? AND action = 'delete' ORDER BY seq DESC LIMIT 1")
      .get(emailDigest, notBefore.getTime()) as ChangeRow | undefined;
    return row === undefined ? undefined : toChange(row);
  }

  pruneChanges(before: Date, tokenRevocationsBefore: Date = before, limit?: number): number {
    const params = { before: before.getTime(), action: TOKEN_REVOCATION, tokens: tokenRevocationsBefore.getTime() };
    let deleted: number;
    if (limit === undefined) {
      deleted = this.#db.stmt('DELETE FROM identity_changes WHERE at < :before OR (action = :action AND at < :tokens)').run(params).changes;
    } else {
      // Two ranges of the at index, each stopped at the limit: the OR of both is a MULTI-INDEX OR, which collects
      // every matching rowid before the LIMIT applies (a scan of all old rows per step).
      const step = (where: string, n: number): number =>
        this.#db.stmt(`DELETE FROM identity_changes WHERE seq IN (SELECT seq FROM identity_changes WHERE ${where} LIMIT :limit)`).run({ ...params, limit: n }).changes;
      deleted = step('at < :before', limit);
      if (deleted < limit) deleted += step('action = :action AND at < :tokens', limit - deleted);
    }
    // A pending delete's email digest is only needed while its retry can matter (the tokens' lifetime).
    // Through the partial index of the few pending ones: the planner took the at index, every old row of the log (0.37 s
    // with 500,000 rows, on the event loop, at every janitor step).
    this.#db
      .stmt('UPDATE identity_changes INDEXED BY idx_identity_changes_email_digest SET email_digest = NULL WHERE email_digest IS NOT NULL AND at < ?')
      .run(tokenRevocationsBefore.getTime());
    return deleted;
  }

  #exists(id: string): boolean {
    return this.#db.stmt('SELECT 1 FROM users WHERE id = ?').get(id) !== undefined;
  }

  /**
   * Raises the user's generation (every session below it refused at once, by rotateRefreshToken) and revokes the first
   * step's worth of its sessions; the store revokes the rest a step at a time after the commit (see SessionSweep).
   * Call inside the action's transaction, for a user known to exist.
   */
  #revokeSessions(userId: string, at: number): SessionSweep {
    const generation = raiseGeneration(this.#db, userId);
    if (generation === undefined) throw new Error('user vanished inside its transaction'); // impossible: rolls back
    return { userId, generation, at, revoked: revokeSessionsBelow(this.#db, userId, generation, at, SESSION_SWEEP_BATCH) };
  }

  #append(change: ChangeInput): void {
    this.#db
      .stmt('INSERT INTO identity_changes (at, actor, action, target_id, generation) VALUES (?, ?, ?, ?, ?)')
      .run(change.at.getTime(), change.actor, change.action, change.targetId, change.generation ?? null);
  }
}

function toSummary(row: SummaryRow): UserSummary {
  return {
    id: row.id,
    email: row.email,
    createdAt: new Date(row.created_at),
    lastLoginAt: row.last_login_at === null ? null : new Date(row.last_login_at),
    disabled: row.disabled_at !== null,
    activeSessions: row.active_sessions,
  };
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));
  return {
    id: row.id,
    name: row.name,
    createdAt: new Date(row.created_at),
    expiresAt: date(row.expires_at),
    lastUsedAt: date(row.last_used_at),
    revokedAt: date(row.revoked_at),
  };
}
