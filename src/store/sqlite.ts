// The SQLite UserStore (better-sqlite3, WAL): the default, embedded in `<dataDir>/portcullis.db`.
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, realpathSync, statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteMigrations } from './migrations/sqlite.js';
import { assertOrdered, MIGRATION_TIMEOUT_MS } from './migrations/types.js';
import { assertValidExpiry, InvalidCursorError, type AdminAction, type ApiKeyPage, type ApiKeyQuery, type ApiKeyRecord, type ChangeInput, type ChangeRecord, type IdentityTotals, type NewApiKey, type UserPage, type UserQuery, type UserSummary } from './identity-types.js';
import { raiseGeneration, revokeSessionsBelow, SESSION_SWEEP_BATCH, SqliteIdentity, type SessionSweep } from './sqlite-identity.js';
import { SqliteFileGuard, StoreFileLostError } from './sqlite-file-guard.js';
import { ConfigError } from '../config/config-error.js';
import { leaveOpenUntilExit } from './sqlite-left-open.js';
import {
  EmailTakenError,
  newerSchemaError,
  notMigratedError,
  SESSION_WAIT_ATTEMPTS,
  sessionWaitMs,
  StoreNotReadyError,
  StoreUnavailableError,
  type NewRefreshToken,
  type SessionStart,
  type RotationResult,
  type SessionExpectation,
  type SessionsRevoked,
  type UserRecord,
  type UserStore,
  withinReuseGrace,
} from './user-store.js';

/** File name of the database inside the data dir. */
export const SQLITE_FILE_NAME = 'portcullis.db';

/**
 * Where the database lives: a data dir (file `portcullis.db` inside it) or an explicit file path. `create` (default
 * true) makes the data dir and the file when absent; false: an absent file is a StoreNotReadyError naming it.
 */
export type SqliteStoreOptions = (
  | { readonly dataDir: string; readonly busyTimeoutMs?: number; readonly create?: boolean }
  | { readonly file: string; readonly busyTimeoutMs?: number; readonly create?: boolean }
) & {
  /** Called once, when the file (or its -wal, -shm) is found deleted or replaced: every step is refused from then on. */
  readonly onFileLost?: (lost: StoreFileLostError) => void;
};

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  created_at: number;
  disabled_at: number | null;
  token_generation: number;
}

interface TokenRow {
  user_id: string;
  family_id: string;
  expires_at: number;
  revoked_at: number | null;
  replaced_by: string | null;
}

/**
 * Opens (creating when absent, unless `create: false`) the SQLite database. Call `migrate()` (or, when it may not be
 * changed, `checkMigrated()`) before use. Throws StoreUnavailableError when the file cannot be opened.
 * better-sqlite3 is synchronous: each call is short (indexed lookups), and write
 * transactions are `BEGIN IMMEDIATE` so that several gateway processes sharing the file serialise cleanly.
 */
export function openSqliteUserStore(options: SqliteStoreOptions): SqliteUserStore {
  const create = options.create ?? true;
  let file: string;
  if ('file' in options) {
    file = options.file;
  } else {
    file = join(options.dataDir, SQLITE_FILE_NAME);
    if (create) {
      try {
        mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw unwritableDataDir(options.dataDir, err);
      }
    }
  }
  // Checked first for the message; fileMustExist still keeps SQLite from creating it should it vanish meanwhile.
  if (!create && !existsSync(file)) {
    throw new StoreNotReadyError(`no user store at ${file}: check PORTCULLIS_DATA_DIR, or create it with "portcullis migrate"`);
  }
  try {
    // SQLite's own refusal of a directory is SQLITE_CANTOPEN, which names neither the setting nor the path.
    if (existsSync(file) && statSync(file).isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
    keepPrivate(file, create);
  } catch (err) {
    throw 'dataDir' in options ? unwritableDataDir(options.dataDir, err) : new StoreUnavailableError({ cause: err });
  }
  try {
    const db = new Database(file, { fileMustExist: !create });
    db.pragma('journal_mode = WAL');
    // No waiting inside SQLite: its busy handler sleeps on the calling thread, which is the event loop, so a write
    // lock held by another process (the CLI, a second gateway, a backup) froze every request for up to 5 s. A busy
    // step is retried from a timer instead (#run), within the same budget.
    db.pragma('busy_timeout = 0');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    // Absolute, as SQLite holds it: a relative data dir (an embedder's) read after a chdir would name another file.
    const guard = { files: new SqliteFileGuard(resolve(file)), ...(options.onFileLost ? { onLost: options.onFileLost } : {}) };
    return new SqliteUserStore(db, file, Math.trunc(options.busyTimeoutMs ?? 5000), guard);
  } catch (err) {
    throw new StoreUnavailableError({ cause: err });
  }
}

/**
 * A data dir the store cannot be made or opened in (a file where the directory should be, a symlink to a missing
 * directory, no permission): the ConfigError check-config gives for it, naming the setting and the path, where the
 * bare mkdir or open error (`EEXIST: file already exists, mkdir …`, `user store unavailable: ENOENT`) was printed.
 */
function unwritableDataDir(dataDir: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== 'string') return new StoreUnavailableError({ cause: err });
  return new ConfigError(`PORTCULLIS_DATA_DIR: cannot write the user store in ${dataDir} (${code === 'EEXIST' ? 'ENOTDIR' : code})`);
}

/**
 * The store holds password hashes and emails: a new file is the owner's alone (0600), as the generated JWT secret
 * is. SQLite creates it by the process umask (0644 under the usual 022), and its -wal and -shm files copy the main
 * file's mode: in a data directory made beforehand (a Docker volume, a systemd state directory: 0755), every local
 * user could copy the hashes for offline cracking. An existing file readable by others was made so by a umask, not
 * by choice: it is made 0600 where this process owns it (root included: another user's file is left, as is one
 * mounted read-only). One readable by its group only is left (a backup sidecar's group may read it on purpose). The
 * journal files sit beside the file SQLite opens: a symlink's target.
 */
function keepPrivate(file: string, create: boolean): void {
  if (create && !existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return; // absent (the open below says so)
  }
  for (const path of [real, `${real}-wal`, `${real}-shm`]) {
    try {
      const { mode, uid } = lstatSync(path);
      // lstat: a -wal planted as a symlink is not followed (SQLite refuses it anyway).
      const ours = process.getuid === undefined || uid === process.getuid();
      if ((mode & 0o170000) === 0o100000 && (mode & 0o007) !== 0 && ours) chmodSync(path, 0o600);
    } catch {
      // absent (no -wal yet), or not ours to change
    }
  }
}

/** The file guard of a store opened on a path, and its callback. */
interface FileGuardOptions {
  readonly files: SqliteFileGuard;
  readonly onLost?: (lost: StoreFileLostError) => void;
}

/** UserStore over one better-sqlite3 connection. */
export class SqliteUserStore implements UserStore {
  readonly #db: Database.Database;
  readonly #identity: SqliteIdentity;
  /** The file, for StoreNotReadyError's message. */
  readonly #file: string;
  #closed = false;

  /** How long a step may keep retrying while another connection holds the write lock (SQLITE_BUSY). */
  readonly #busyBudgetMs: number;

  /** The files this connection opened, when it opened a path (see SqliteFileGuard), and who hears of their loss. */
  readonly #guard: FileGuardOptions | undefined;
  #lossReported = false;

  constructor(db: Database.Database, file = '(unnamed)', busyBudgetMs = 5000, guard?: FileGuardOptions) {
    this.#db = db;
    this.#guard = guard;
    this.#file = file;
    this.#busyBudgetMs = busyBudgetMs;
    this.#identity = new SqliteIdentity({
      stmt: (sql) => this.#stmt(sql),
      immediate: (step) => db.transaction(step).immediate(),
    });
  }

  async migrate(): Promise<void> {
    assertOrdered(sqliteMigrations);
    const latest = sqliteMigrations.at(-1)?.version ?? 0;
    // Another starter on the file (each worker of a multi-worker gateway migrates at start, a second gateway,
    // `portcullis migrate`) holds the write lock for its whole migration: index builds over a grown store's largest
    // tables take seconds, past the 5 s an ordinary step waits, and the later starter then failed to start. Nothing is
    // served yet, so it waits as long as PostgreSQL's starters wait for the migration lock.
    const lockWaitMs = Math.max(MIGRATION_TIMEOUT_MS, this.#busyBudgetMs);
    await this.#run(() => {
      const db = this.#db;
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
      // One IMMEDIATE transaction takes the write lock first, so concurrent starters apply each migration once.
      db.transaction(() => {
        const row = this.#stmt('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
        const current = row.v ?? 0;
        // Thrown inside the transaction, which rolls back: nothing of the file is written (user_version stays).
        if (current > latest) throw newerSchemaError(`at ${this.#file}`, current, latest);
        for (const m of sqliteMigrations) {
          if (m.version <= current) continue;
          for (const sql of m.statements) db.exec(sql);
          this.#stmt('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
            m.version,
            m.name,
            Date.now(),
          );
        }
        // A write on every start, even with nothing to migrate: a file SQLite could open only read-only (permissions,
        // an immutable file, a read-only mount) is refused here (SQLITE_READONLY) instead of starting a gateway that
        // reports ready and answers every login 503. The header's user_version mirrors the schema version.
        db.pragma(`user_version = ${latest}`);
      }).immediate();
    }, lockWaitMs);
  }

  /** Throws StoreNotReadyError unless every migration this version knows has been applied; changes nothing. */
  async checkMigrated(): Promise<void> {
    const current = await this.#run(() => {
      const table = this.#stmt("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
      if (table === undefined) return undefined;
      return (this.#stmt('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? undefined;
    });
    const latest = sqliteMigrations.at(-1)?.version ?? 0;
    if (current === undefined || current < latest) throw notMigratedError(`at ${this.#file}`, current, latest);
    if (current > latest) throw newerSchemaError(`at ${this.#file}`, current, latest);
  }

  async createUser(user: { id: string; email: string; passwordHash: string }, change?: ChangeInput): Promise<UserRecord> {
    if (change === undefined) return this.#run(() => this.#insertUser(user));
    return this.#run(() =>
      this.#db
        .transaction(() => {
          const record = this.#insertUser(user);
          this.#identity.recordChange(change);
          return record;
        })
        .immediate(),
    );
  }

  async registerUser(user: { id: string; email: string; passwordHash: string }, token: NewRefreshToken): Promise<{ user: UserRecord; start: SessionStart }> {
    return this.#run(() =>
      this.#db
        .transaction(() => {
          const record = this.#insertUser(user);
          // A user made in this transaction has nothing revoked to wait for, and no hash to compare.
          const start = this.#storeSession(token, undefined, SESSION_WAIT_ATTEMPTS);
          if (start === undefined || typeof start === 'number') throw new Error('a new user refused its first session');
          return { user: record, start };
        })
        .immediate(),
    );
  }

  /** Inserts the user (createUser, registerUser); EmailTakenError for an email already registered. */
  #insertUser(user: { id: string; email: string; passwordHash: string }): UserRecord {
    const createdAt = Date.now();
    const email = normalizeEmail(user.email);
    try {
      this.#stmt('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)').run(user.id, email, user.passwordHash, createdAt);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && String((err as Error).message).includes('users.email')) {
        throw new EmailTakenError();
      }
      throw err;
    }
    return { id: user.id, email, passwordHash: user.passwordHash, createdAt: new Date(createdAt), disabledAt: null };
  }

  async findUserByEmail(email: string): Promise<UserRecord | undefined> {
    return this.#run(() => toUser(this.#stmt('SELECT * FROM users WHERE email = ?').get(normalizeEmail(email)) as UserRow | undefined));
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    return this.#run(() => toUser(this.#stmt('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined));
  }

  async updatePasswordHash(userId: string, passwordHash: string, previousHash?: string): Promise<boolean> {
    return this.#run(
      () =>
        this.#stmt('UPDATE users SET password_hash = ? WHERE id = ? AND (? IS NULL OR password_hash = ?)').run(
          passwordHash,
          userId,
          previousHash ?? null,
          previousHash ?? null,
        ).changes > 0,
    );
  }

  async createRefreshToken(token: NewRefreshToken, expected?: SessionExpectation): Promise<SessionStart | undefined> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#run(() => this.#db.transaction(() => this.#storeSession(token, expected, attempt)).immediate());
      if (typeof outcome !== 'number') return outcome;
      await delay(outcome);
    }
  }

  /** One attempt of createRefreshToken: its start, undefined when refused, or how long to wait (sessionWaitMs). */
  #storeSession(token: NewRefreshToken, expected: SessionExpectation | undefined, attempt: number): SessionStart | undefined | number {
    // Inside the write lock: a reset or disable that committed since the login read the user is seen here, and so is
    // the token generation a log-out everywhere raised.
    const owner = (
      expected === undefined
        ? this.#stmt('SELECT token_generation FROM users WHERE id = ?').get(token.userId)
        : this.#stmt('SELECT token_generation FROM users WHERE id = ? AND password_hash = ? AND disabled_at IS NULL').get(
            token.userId,
            expected.passwordHash,
          )
    ) as { token_generation: number } | undefined;
    if (owner === undefined) return undefined;
    // Read under the write lock: a log-out, disable or reset (another process's) that held it committed its
    // revocation time before, so the session's access token is issued after it.
    const now = Date.now();
    // One entry of the (user_id, revoked_at) index (migration 9), however many sessions the user holds: max() over
    // the user_id index read every one of them (50 ms at 100,000, on the event loop, at each login).
    const latest = this.#stmt(
      'SELECT revoked_at AS latest FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NOT NULL ORDER BY revoked_at DESC LIMIT 1',
    ).get(token.userId) as { latest: number | null } | undefined;
    const waitMs = sessionWaitMs(latest?.latest ?? null, now);
    if (waitMs > 0 && attempt < SESSION_WAIT_ATTEMPTS) return waitMs;
    // The session carries the generation it was issued under: a revoking action raises the user's past it, and its
    // refresh token is refused from then on, before the action's sweep reaches its row.
    this.#stmt(
      'INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, generation, session_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      token.id,
      token.userId,
      token.familyId,
      token.tokenHash,
      token.expiresAt.getTime(),
      now,
      owner.token_generation,
      token.sessionExpiresAt?.getTime() ?? null,
    );
    this.#stmt('UPDATE users SET last_login_at = ? WHERE id = ?').run(now, token.userId);
    return { issuedAt: new Date(now), generation: owner.token_generation };
  }

  async rotateRefreshToken(
    tokenHash: string,
    next: Omit<NewRefreshToken, 'userId' | 'familyId'>,
    now: Date,
    graceMs: number,
  ): Promise<RotationResult> {
    const nowMs = now.getTime();
    return this.#run(() => {
      const db = this.#db;
      return db
        .transaction((): RotationResult => {
          // The conditional UPDATE is the decision: only a live token matches, and only once.
          // A disabled user's token matches nothing and then reads as 'invalid' below (its revoked_at is NULL); so
          // does one issued below the user's generation: a revoking action raised it, and its sweep may not have
          // revoked this row yet (a log-out everywhere of 100,000 sessions revokes them a step at a time).
          const live = this.#stmt(
            `UPDATE refresh_tokens SET revoked_at = ?, replaced_by = ?
             WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = refresh_tokens.user_id AND u.disabled_at IS NULL
                             AND u.token_generation = refresh_tokens.generation)
             RETURNING user_id, family_id, generation, session_expires_at`,
          ).get(nowMs, next.id, tokenHash, nowMs) as
            | { user_id: string; family_id: string; generation: number; session_expires_at: number | null }
            | undefined;
          if (live) {
            // The session's end caps every token of it: a client refreshing forever is still logged out then.
            const sessionEnd = live.session_expires_at ?? next.sessionExpiresAt?.getTime() ?? null;
            const expiresAt = sessionEnd === null ? next.expiresAt.getTime() : Math.min(next.expiresAt.getTime(), sessionEnd);
            this.#stmt(
              'INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, generation, session_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            ).run(next.id, live.user_id, live.family_id, next.tokenHash, expiresAt, nowMs, live.generation, sessionEnd);
            const row = this.#stmt('SELECT * FROM users WHERE id = ?').get(live.user_id) as UserRow | undefined;
            const user = toUser(row);
            if (!row || !user) throw new Error('refresh token without user'); // impossible with the foreign key; rolls back
            return {
              kind: 'rotated',
              user,
              familyId: live.family_id,
              generation: row.token_generation,
              ...(sessionEnd === null ? {} : { sessionExpiresAt: new Date(sessionEnd) }),
            };
          }
          const row = this.#stmt(
            'SELECT user_id, family_id, expires_at, revoked_at, replaced_by FROM refresh_tokens WHERE token_hash = ?',
          ).get(tokenHash) as TokenRow | undefined;
          if (!row || row.expires_at <= nowMs || row.revoked_at === null || row.replaced_by === null) return { kind: 'invalid' };
          // The clock read again now, inside the write transaction: see withinReuseGrace.
          if (withinReuseGrace(nowMs, Date.now(), row.revoked_at, graceMs)) return { kind: 'grace' };
          this.#stmt('UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL').run(
            nowMs,
            row.family_id,
          );
          return { kind: 'reused', userId: row.user_id, familyId: row.family_id };
        })
        .immediate();
    });
  }

  async revokeFamilyOf(tokenHash: string, now: Date): Promise<{ userId: string } | undefined> {
    return this.#run(() => {
      const db = this.#db;
      return db
        .transaction(() => {
          const row = this.#stmt('SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?').get(tokenHash) as
            | { user_id: string; family_id: string }
            | undefined;
          if (!row) return undefined;
          this.#stmt('UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL').run(
            now.getTime(),
            row.family_id,
          );
          return { userId: row.user_id };
        })
        .immediate();
    });
  }

  async revokeAllForUser(userId: string, now: Date): Promise<SessionsRevoked> {
    const first = await this.#run(() =>
      this.#db
        .transaction((): { at: number; sweep?: SessionSweep } => {
          // The revocation time, read under the write lock (as stampChange does for the user actions): a login that
          // committed before took its time earlier, and one waiting for this commit (another process) reads it later.
          const at = Math.max(now.getTime(), Date.now());
          const generation = raiseGeneration({ stmt: (sql) => this.#stmt(sql) }, userId);
          if (generation === undefined) return { at };
          const revoked = revokeSessionsBelow({ stmt: (sql) => this.#stmt(sql) }, userId, generation, at, SESSION_SWEEP_BATCH);
          return { at, sweep: { userId, generation, at, revoked } };
        })
        .immediate(),
    );
    if (first.sweep === undefined) return { revoked: 0, at: new Date(first.at) };
    const revoked = await this.#finishSweep(first.sweep);
    return { revoked, at: new Date(first.at), generation: first.sweep.generation };
  }

  /**
   * Revokes the rest of a revoking action's sessions after its commit, a step (SESSION_SWEEP_BATCH rows) at a time
   * with a pause as long as the step between steps, as the janitor does: one UPDATE of them all held the event loop.
   * Nothing waits on it for safety: the action's raised generation refuses every one of them already. So a step that
   * fails (the store gone, busy past its budget) ends the sweep without failing the committed action; the rows left are
   * refused all the same, and expire. Resolves with how many the action revoked in all.
   */
  async #finishSweep(sweep: SessionSweep): Promise<number> {
    let total = sweep.revoked;
    let last = sweep.revoked;
    let stepMs = 1;
    try {
      while (last === SESSION_SWEEP_BATCH) {
        await delay(Math.max(1, stepMs));
        const started = performance.now();
        last = await this.#run(() =>
          revokeSessionsBelow({ stmt: (sql) => this.#stmt(sql) }, sweep.userId, sweep.generation, sweep.at, SESSION_SWEEP_BATCH),
        );
        stepMs = performance.now() - started;
        total += last;
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
    }
    return total;
  }

  async deleteExpired(now: Date, limit?: number): Promise<number> {
    if (limit === undefined) return this.#run(() => this.#stmt('DELETE FROM refresh_tokens WHERE expires_at < ?').run(now.getTime()).changes);
    // By rowid through the expires_at index: the batch costs its own rows, whatever the table holds.
    return this.#run(
      () =>
        this.#stmt('DELETE FROM refresh_tokens WHERE rowid IN (SELECT rowid FROM refresh_tokens WHERE expires_at < ? LIMIT ?)').run(
          now.getTime(),
          limit,
        ).changes,
    );
  }

  async listUsers(query: UserQuery, now: Date): Promise<UserPage> {
    return this.#run(() => this.#identity.listUsers(query, now));
  }

  async getUserSummary(id: string, now: Date): Promise<UserSummary | undefined> {
    return this.#run(() => this.#identity.getUserSummary(id, now));
  }

  async setUserDisabled(id: string, disabled: boolean, change: ChangeInput): Promise<UserRecord | undefined> {
    const { found, sweep } = await this.#run(() => this.#identity.setUserDisabled(id, disabled, change));
    if (!found) return undefined;
    if (sweep !== undefined) await this.#finishSweep(sweep);
    return this.#run(() => toUser(this.#stmt('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined));
  }

  async logoutUser(id: string, change: ChangeInput): Promise<boolean> {
    const sweep = await this.#run(() => this.#identity.logoutUser(id, change));
    if (sweep === undefined) return false;
    await this.#finishSweep(sweep);
    return true;
  }

  async resetPassword(id: string, passwordHash: string, change: ChangeInput): Promise<boolean> {
    const sweep = await this.#run(() => this.#identity.resetPassword(id, passwordHash, change));
    if (sweep === undefined) return false;
    await this.#finishSweep(sweep);
    return true;
  }

  /**
   * Deletes the user's sessions a step at a time (pausing between steps as #finishSweep does), then the user: one
   * DELETE cascading to 100,000 sessions held the event loop for it. Each step is a transaction of its own; the first
   * that leaves more raises the generation, so the sessions still to go are refused meanwhile. A step that fails
   * before the last leaves the user in place (its sessions refused): the delete failed, and is retried whole.
   */
  async deleteUser(id: string, change: ChangeInput): Promise<boolean> {
    for (;;) {
      const started = performance.now();
      const step = await this.#run(() => this.#identity.deleteUserStep(id, change));
      if (step !== 'more') return step === 'deleted';
      await delay(Math.max(1, performance.now() - started));
    }
  }

  async recordChange(change: ChangeInput): Promise<void> {
    await this.#run(() => this.#identity.recordChange(change));
  }

  async identityTotals(now: Date): Promise<IdentityTotals> {
    return this.#run(() => this.#identity.identityTotals(now));
  }

  async createApiKey(key: NewApiKey, change: ChangeInput): Promise<ApiKeyRecord> {
    assertValidExpiry(key.expiresAt);
    return this.#run(() => this.#identity.createApiKey(key, change));
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    return this.#run(() => this.#identity.findApiKeyByHash(keyHash));
  }

  async listApiKeys(query: ApiKeyQuery): Promise<ApiKeyPage> {
    return this.#run(() => this.#identity.listApiKeys(query));
  }

  async revokeApiKey(id: string, change: ChangeInput): Promise<boolean> {
    return this.#run(() => this.#identity.revokeApiKey(id, change));
  }

  async recordApiKeyUse(uses: ReadonlyMap<string, Date>): Promise<void> {
    if (uses.size > 0) await this.#run(() => this.#identity.recordApiKeyUse(uses));
  }

  async readChanges(afterSeq: number, notBefore: Date, limit: number): Promise<readonly ChangeRecord[]> {
    return this.#run(() => this.#identity.readChanges(afterSeq, notBefore, limit));
  }

  async lastChange(targetId: string, action: AdminAction, notBefore: Date): Promise<ChangeRecord | undefined> {
    return this.#run(() => this.#identity.lastChange(targetId, action, notBefore));
  }

  async markPendingDelete(targetId: string, emailDigest: string | null): Promise<void> {
    return this.#run(() => this.#identity.markPendingDelete(targetId, emailDigest));
  }

  async findPendingDelete(emailDigest: string, notBefore: Date): Promise<ChangeRecord | undefined> {
    return this.#run(() => this.#identity.findPendingDelete(emailDigest, notBefore));
  }

  async pruneChanges(before: Date, tokenRevocationsBefore?: Date, limit?: number): Promise<number> {
    return this.#run(() => this.#identity.pruneChanges(before, tokenRevocationsBefore, limit));
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#stmt('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // SQLite's close checkpoints through the -shm mapping and deletes the -wal and -shm at their paths: not with a
    // -shm it cannot write, nor with files at those paths that are no longer this connection's (sqlite-left-open.ts).
    if (this.#guard !== undefined && !this.#guard.files.safeToClose()) return leaveOpenUntilExit(this.#db);
    // SQLite's close checkpoints through its mapping of the -shm: a -shm cut short under the gateway was a SIGBUS here.
    this.#guard?.files.restoreShmLength();
    this.#db.close();
  }

  readonly #statements = new Map<string, Database.Statement>();

  /** A prepared statement, compiled once per connection. */
  #stmt(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #open(): void {
    if (this.#closed || !this.#db.open) throw new StoreUnavailableError();
    const refusal = this.#guard?.files.refusal();
    if (refusal === undefined) return;
    if (refusal instanceof StoreFileLostError && !this.#lossReported) {
      this.#lossReported = true;
      this.#guard?.onLost?.(refusal);
    }
    throw new StoreUnavailableError({ cause: refusal });
  }

  /**
   * Runs a synchronous database step; any driver error becomes StoreUnavailableError (no SQL leaves the adapter).
   * A step refused because another connection holds the write lock (SQLITE_BUSY) changed nothing (a transaction is
   * rolled back whole), so it is run again after a pause that doubles from 1 ms to 50 ms, until the busy budget is
   * spent (`budgetMs`, the store's busy budget unless given): the event loop serves requests meanwhile.
   */
  async #run<T>(step: () => T, budgetMs = this.#busyBudgetMs): Promise<T> {
    const deadline = performance.now() + budgetMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      this.#open();
      try {
        return step();
      } catch (err) {
        if (err instanceof StoreUnavailableError || err instanceof StoreNotReadyError || err instanceof InvalidCursorError || err instanceof EmailTakenError) throw err;
        if (!isBusy(err) || performance.now() + pause > deadline) throw new StoreUnavailableError({ cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY…): another connection's lock. */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function toUser(row: UserRow | undefined): UserRecord | undefined {
  if (!row) return undefined;
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    createdAt: new Date(row.created_at),
    disabledAt: row.disabled_at === null ? null : new Date(row.disabled_at),
  };
}
