// The PostgreSQL UserStore (pg Pool): bounded timeouts, driver errors mapped to the store's typed errors.
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { describeCause } from '../errors.js';
import { postgresMigrations } from './migrations/postgres.js';
import { assertOrdered, MIGRATION_TIMEOUT_MS } from './migrations/types.js';
import { assertValidExpiry, type AdminAction, type ApiKeyPage, type ApiKeyQuery, type ApiKeyRecord, type ChangeInput, type ChangeRecord, type IdentityTotals, type NewApiKey, type UserPage, type UserQuery, type UserSummary } from './identity-types.js';
import { PostgresIdentity, raiseGeneration } from './postgres-identity.js';
import {
  EmailTakenError,
  notMigratedError,
  SESSION_WAIT_ATTEMPTS,
  sessionWaitMs,
  StoreUnavailableError,
  type SessionStart,
  type NewRefreshToken,
  type RotationResult,
  type SessionExpectation,
  type SessionsRevoked,
  type UserRecord,
  type UserStore,
  withinReuseGrace,
} from './user-store.js';

/** Connection settings. Defaults keep a dead server from holding a request for long. */
export interface PostgresStoreOptions {
  /** postgres:// URL (config `database.url`). */
  readonly url: string;
  /** Schema holding the tables (default `public`); tests use a unique one per run. Created by migrate() when absent. */
  readonly schema?: string;
  /** Pool size (config `database.pool_size`, default 10). */
  readonly poolSize?: number;
  /** Longest wait for a connection, ms (default 2000). */
  readonly connectTimeoutMs?: number;
  /** Server- and client-side limit on one statement, ms (default 5000). */
  readonly statementTimeoutMs?: number;
  /** Where idle-connection errors are reported (they would otherwise crash the process). */
  readonly logger?: Pick<Logger, 'warn'>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The readiness ping's statement (see PostgresUserStore.ping); search_path is pinned to the schema. */
export const PING_SQL = 'SELECT MAX(version) AS v FROM schema_migrations';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  created_at: Date;
  disabled_at: Date | null;
  token_generation: number;
}

/**
 * `sslmode=prefer`, `require` or `verify-ca` spelled as `verify-full`, which node-postgres reads them as (without
 * `uselibpqcompat=true`): the same verified TLS connection, without the driver's multi-line "SECURITY WARNING" about
 * it on stderr at every start and command (not JSON, in the middle of the gateway's log stream). The README says how
 * the driver reads each mode.
 */
export function withoutSslModeAlias(url: string): string {
  const query = url.indexOf('?');
  if (query === -1 || /[?&]uselibpqcompat=true(?:&|$)/.test(url)) return url;
  return url.slice(0, query) + url.slice(query).replace(/([?&])sslmode=(?:prefer|require|verify-ca)(?=&|$)/g, '$1sslmode=verify-full');
}

/**
 * Creates the pool (connections open lazily). Call `migrate()` before use. Throws TypeError for a schema name that is
 * not a plain lower-case identifier (it is spliced into SQL, so it is checked rather than escaped).
 */
export function openPostgresUserStore(options: PostgresStoreOptions): PostgresUserStore {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('postgres schema must match [a-z_][a-z0-9_]*');
  const statementTimeout = options.statementTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: withoutSslModeAlias(options.url),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    statement_timeout: statementTimeout,
    // The client-side limit also covers a server that stopped answering without closing the socket.
    query_timeout: statementTimeout + 1000,
    idle_in_transaction_session_timeout: statementTimeout * 2,
    keepAlive: true,
    application_name: 'portcullis',
    options: `-c search_path=${schema}`,
  });
  pool.on('error', (err) => {
    options.logger?.warn({ cause: describeCause(err) }, 'idle PostgreSQL connection failed');
  });
  return new PostgresUserStore(pool, schema);
}

/** UserStore over a pg Pool. */
export class PostgresUserStore implements UserStore {
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #identity: PostgresIdentity;

  constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.#schema = schema;
    this.#identity = new PostgresIdentity({
      query: (sql, params) => this.#run(sql, params),
      transaction: (step) => this.#transaction(step),
      schema,
    });
  }

  /**
   * Throws StoreNotReadyError unless every migration this version knows has been applied to the schema; changes
   * nothing (the CLI's identity commands, which may not create tables). The message names the schema, not the URL.
   */
  async checkMigrated(): Promise<void> {
    const q = `"${this.#schema}"`;
    const found = await this.#run<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${q}.schema_migrations`]);
    let current: number | undefined;
    if (found.rows[0]?.t != null) {
      const { rows } = await this.#run<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${q}.schema_migrations`, []);
      current = rows[0]?.v ?? undefined;
    }
    const latest = postgresMigrations.at(-1)?.version ?? 0;
    if (current === undefined || current < latest) throw notMigratedError(`in schema "${this.#schema}" of database.url`, current, latest);
    // A newer schema is served: the gateways of a rolling upgrade share this database, and the previous version
    // keeps running (and restarting) beside the one that migrated it (README, Operating users). Unlike SQLite's file.
  }

  /** Applies pending migrations under a session advisory lock, so concurrent starters wait for each other. */
  async migrate(): Promise<void> {
    assertOrdered(postgresMigrations);
    const q = `"${this.#schema}"`;
    // The session is altered (statement_timeout): it is never handed back to the pool.
    await this.#withClient(async (client) => {
      await client.query(`SET statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [`portcullis:migrate:${this.#schema}`]);
      try {
        if (this.#schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (
          version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
        const { rows } = await client.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${q}.schema_migrations`);
        const current = rows[0]?.v ?? 0;
        for (const m of postgresMigrations) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(`SET LOCAL search_path TO ${q}`);
            for (const sql of m.statements) await client.query(sql);
            await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`portcullis:migrate:${this.#schema}`]);
      }
    }, 'discard');
  }

  async createUser(user: { id: string; email: string; passwordHash: string }, change?: ChangeInput): Promise<UserRecord> {
    const email = normalizeEmail(user.email);
    const insert = 'INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) RETURNING *';
    try {
      if (change !== undefined) {
        return await this.#transaction(async (client) => {
          const { rows } = await client.query<UserRow>(insert, [user.id, email, user.passwordHash]);
          await this.#identity.appendChange(client, change);
          return toUser(rows[0]!);
        });
      }
      const { rows } = await this.#pool.query<UserRow>(insert, [user.id, email, user.passwordHash]);
      return toUser(rows[0]!);
    } catch (err) {
      const cause = err instanceof StoreUnavailableError ? err.cause : err;
      if (isEmailTaken(cause)) throw new EmailTakenError();
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError({ cause: err });
    }
  }

  async registerUser(user: { id: string; email: string; passwordHash: string }, token: NewRefreshToken): Promise<{ user: UserRecord; start: SessionStart }> {
    const email = normalizeEmail(user.email);
    try {
      return await this.#transaction(async (client) => {
        const { rows } = await client.query<UserRow>('INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) RETURNING *', [
          user.id,
          email,
          user.passwordHash,
        ]);
        // A user made in this transaction has nothing revoked to wait for, and no hash to compare.
        const start = await this.#storeSession(client, token, undefined, SESSION_WAIT_ATTEMPTS);
        if (start === undefined || typeof start === 'number') throw new Error('a new user refused its first session');
        return { user: toUser(rows[0]!), start };
      });
    } catch (err) {
      if (isEmailTaken(err instanceof StoreUnavailableError ? err.cause : err)) throw new EmailTakenError();
      throw err;
    }
  }

  async findUserByEmail(email: string): Promise<UserRecord | undefined> {
    const rows = await this.#query<UserRow>('SELECT * FROM users WHERE email = $1', [normalizeEmail(email)]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    if (!UUID.test(id)) return undefined; // not a uuid: PostgreSQL would raise an error instead of finding nothing
    const rows = await this.#query<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async updatePasswordHash(userId: string, passwordHash: string, previousHash?: string): Promise<boolean> {
    if (!UUID.test(userId)) return false;
    const result = await this.#run('UPDATE users SET password_hash = $1 WHERE id = $2 AND ($3::text IS NULL OR password_hash = $3)', [
      passwordHash,
      userId,
      previousHash ?? null,
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async createRefreshToken(token: NewRefreshToken, expected?: SessionExpectation): Promise<SessionStart | undefined> {
    if (!UUID.test(token.userId)) return undefined;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#transaction((client) => this.#storeSession(client, token, expected, attempt));
      if (typeof outcome !== 'number') return outcome;
      await delay(outcome);
    }
  }

  /** One attempt of createRefreshToken: its start, undefined when refused, or how long to wait (sessionWaitMs). */
  async #storeSession(
    client: pg.PoolClient,
    token: NewRefreshToken,
    expected: SessionExpectation | undefined,
    attempt: number,
  ): Promise<SessionStart | undefined | number> {
    // The user's row lock first (as the user actions and revokeAllForUser take it), and with `expected` only for a
    // user still enabled with the verified hash: waiting for a reset or disable re-reads the row it committed, and
    // then inserts nothing.
    // The generation is read with the lock: an action that raised it held the lock first and has committed.
    const owner = await client.query<{ token_generation: number }>(
      expected === undefined
        ? 'SELECT token_generation FROM users WHERE id = $1 FOR NO KEY UPDATE'
        : 'SELECT token_generation FROM users WHERE id = $1 AND password_hash = $2 AND disabled_at IS NULL FOR NO KEY UPDATE',
      expected === undefined ? [token.userId] : [token.userId, expected.passwordHash],
    );
    const generation = owner.rows[0]?.token_generation;
    if (generation === undefined) return undefined;
    // Read after the lock: a log-out, disable or reset that held it committed its revocation time before this, so
    // the session's access token is issued after it (a time read before the wait was refused by it).
    const issuedAt = Date.now();
    // One entry of the (user_id, revoked_at) index (migration 9), however many sessions the user holds.
    const latest = await client.query<{ latest: Date | null }>(
      'SELECT revoked_at AS latest FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at DESC LIMIT 1',
      [token.userId],
    );
    const waitMs = sessionWaitMs(latest.rows[0]?.latest?.getTime() ?? null, issuedAt);
    if (waitMs > 0 && attempt < SESSION_WAIT_ATTEMPTS) return waitMs;
    // The family row (the lock that serialises rotation and revocation), its first token, and the last login time.
    await client.query(
      `WITH family AS (INSERT INTO refresh_token_families (id, user_id) VALUES ($3, $2) ON CONFLICT (id) DO NOTHING),
            ins AS (INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, session_expires_at)
                    VALUES ($1, $2, $3, $4, $5, $6))
       UPDATE users SET last_login_at = now() WHERE id = $2`,
      [token.id, token.userId, token.familyId, token.tokenHash, token.expiresAt, token.sessionExpiresAt ?? null],
    );
    return { issuedAt: new Date(issuedAt), generation };
  }

  async rotateRefreshToken(
    tokenHash: string,
    next: Omit<NewRefreshToken, 'userId' | 'familyId'>,
    now: Date,
    graceMs: number,
  ): Promise<RotationResult> {
    return this.#transaction(async (client) => {
      if ((await lockFamilyOf(client, tokenHash)) === undefined) return { kind: 'invalid' };
      // From here on this family is ours until COMMIT, and every statement (READ COMMITTED: a fresh snapshot each)
      // sees what the previous holder of the lock committed. The conditional UPDATE is the decision: a concurrent
      // rotation of the same token waited for the lock above, and now matches nothing.
      // A disabled user's token matches nothing and then reads as 'invalid' below (its revoked_at is NULL).
      const live = await client.query<{ user_id: string; family_id: string; session_expires_at: Date | null }>(
        `UPDATE refresh_tokens SET revoked_at = $1, replaced_by = $2
         WHERE token_hash = $3 AND revoked_at IS NULL AND expires_at > $1
           AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL)
         RETURNING user_id, family_id, session_expires_at`,
        [now, next.id, tokenHash],
      );
      const hit = live.rows[0];
      if (hit) {
        // The session's end caps every token of it: a client refreshing forever is still logged out then.
        const sessionEnd = hit.session_expires_at ?? next.sessionExpiresAt ?? null;
        const expiresAt = sessionEnd === null || next.expiresAt < sessionEnd ? next.expiresAt : sessionEnd;
        await client.query(
          'INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, session_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [next.id, hit.user_id, hit.family_id, next.tokenHash, expiresAt, now, sessionEnd],
        );
        // After the family's lock: a revoking action that raised the generation holds that lock until it has also
        // revoked this family, so the generation read here is never one raised after the new token was revoked.
        const user = await client.query<UserRow>('SELECT * FROM users WHERE id = $1', [hit.user_id]);
        const row = user.rows[0]!;
        return {
          kind: 'rotated',
          user: toUser(row),
          familyId: hit.family_id,
          generation: row.token_generation,
          ...(sessionEnd === null ? {} : { sessionExpiresAt: sessionEnd }),
        };
      }
      const found = await client.query<{
        user_id: string;
        family_id: string;
        expires_at: Date;
        revoked_at: Date | null;
        replaced_by: string | null;
      }>('SELECT user_id, family_id, expires_at, revoked_at, replaced_by FROM refresh_tokens WHERE token_hash = $1', [
        tokenHash,
      ]);
      const row = found.rows[0];
      if (!row || row.expires_at <= now || row.revoked_at === null || row.replaced_by === null) return { kind: 'invalid' };
      // The clock read again now, under the family's lock: see withinReuseGrace.
      if (withinReuseGrace(now.getTime(), Date.now(), row.revoked_at.getTime(), graceMs)) return { kind: 'grace' };
      await client.query('UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL', [
        now,
        row.family_id,
      ]);
      return { kind: 'reused', userId: row.user_id, familyId: row.family_id };
    });
  }

  async revokeFamilyOf(tokenHash: string, now: Date): Promise<{ userId: string } | undefined> {
    return this.#transaction(async (client) => {
      const family = await lockFamilyOf(client, tokenHash);
      if (family === undefined) return undefined;
      // After the lock: a rotation that held it has committed, so the token it inserted is seen and revoked too.
      await client.query('UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL', [
        now,
        family.familyId,
      ]);
      return { userId: family.userId };
    });
  }

  async revokeAllForUser(userId: string, now: Date): Promise<SessionsRevoked> {
    if (!UUID.test(userId)) return { revoked: 0, at: now };
    return this.#transaction(async (client) => {
      // The user's row first, as a login's session insert takes it (createRefreshToken) and the user actions do
      // (lockUser): a login whose token row is written but not committed holds it, so this waits for that commit and
      // the UPDATE below sees the token. Without it the UPDATE missed such a token, and a session that existed before
      // the caller's revocation time outlived "log out everywhere".
      await client.query('SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE', [userId]);
      // Every family of the user, in one order (no deadlock between two of these), so no rotation is mid-way.
      await client.query('SELECT id FROM refresh_token_families WHERE user_id = $1 ORDER BY id FOR UPDATE', [userId]);
      // The revocation time, read after the locks (as stampChange does for the user actions): a login or rotation
      // that committed before took its token's time earlier; a login waiting for our commit reads its own later.
      const at = new Date(Math.max(now.getTime(), Date.now()));
      const generation = await raiseGeneration(client, userId);
      const result = await client.query('UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL', [
        at,
        userId,
      ]);
      return { revoked: result.rowCount ?? 0, at, ...(generation === undefined ? {} : { generation }) };
    });
  }

  async deleteExpired(now: Date, limit?: number): Promise<number> {
    if (limit === undefined) {
      const result = await this.#run('DELETE FROM refresh_tokens WHERE expires_at < $1', [now]);
      // Families without tokens left; one held by a rotation right now is skipped (it goes at the next run).
      await this.#run(
        `DELETE FROM refresh_token_families WHERE id IN (
           SELECT f.id FROM refresh_token_families f
           WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)
           FOR UPDATE SKIP LOCKED)`,
        [],
      );
      return result.rowCount ?? 0;
    }
    // One batch through the expires_at index, and the families it empties, by their ids: a sweep of every family (an
    // anti-join over both tables) outlived the statement timeout on a store of a million sessions. A token goes only
    // with its family's lock, in one transaction with that family's removal: a family another transaction holds (a
    // rotation, a log-out everywhere locking every family of its user) keeps its expired tokens, which a later run
    // finds again by expires_at. Deleting the tokens and skipping the locked family instead left a family without
    // tokens that no later run looked at (nor one whose family step failed after its tokens were gone).
    return this.#transaction(async (client) => {
      // The batch is read with its families' locks (SKIP LOCKED below the LIMIT): a held family's tokens are passed
      // over, not counted in the batch. Selected first and left undeleted, they made the step delete fewer than its
      // limit, and the janitor, which steps on only after a full one, ended the run there with the backlog behind
      // them left for the next run. Oldest first: the ORDER BY keeps the plan on the expires_at index (a nested loop
      // into the families' key that stops at the limit); without it PostgreSQL may walk the family_id index and
      // filter by expiry, every live session read to find a few expired ones.
      const batch = await client.query<{ id: string; family_id: string }>(
        `SELECT t.id, t.family_id FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id
         WHERE t.expires_at < $1 ORDER BY t.expires_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED`,
        [now, limit],
      );
      let gone = 0;
      if (batch.rows.length > 0) {
        const deleted = await client.query('DELETE FROM refresh_tokens WHERE id = ANY($1::uuid[])', [batch.rows.map((r) => r.id)]);
        gone = deleted.rowCount ?? 0;
        await client.query(
          `DELETE FROM refresh_token_families f
           WHERE f.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)`,
          [[...new Set(batch.rows.map((r) => r.family_id))]],
        );
      }
      // Expired tokens without a family row (none since migration 3 wrote one for each: nothing to lock), once the
      // families' batches are done: what expired is left then is only held families' tokens and these. A probe of the
      // families' key per token left, not NOT EXISTS: that was planned as a hash anti-join reading every family.
      if (batch.rows.length < limit) {
        const orphans = await client.query(
          `DELETE FROM refresh_tokens WHERE id IN (
             SELECT t.id FROM refresh_tokens t
             WHERE t.expires_at < $1 AND (SELECT 1 FROM refresh_token_families f WHERE f.id = t.family_id) IS NULL
             ORDER BY t.expires_at LIMIT $2)`,
          [now, limit - batch.rows.length],
        );
        gone += orphans.rowCount ?? 0;
      }
      return gone;
    });
  }

  listUsers(query: UserQuery, now: Date): Promise<UserPage> {
    return this.#identity.listUsers(query, now);
  }

  getUserSummary(id: string, now: Date): Promise<UserSummary | undefined> {
    return this.#identity.getUserSummary(id, now);
  }

  async setUserDisabled(id: string, disabled: boolean, change: ChangeInput): Promise<UserRecord | undefined> {
    return (await this.#identity.setUserDisabled(id, disabled, change)) ? this.findUserById(id) : undefined;
  }

  logoutUser(id: string, change: ChangeInput): Promise<boolean> {
    return this.#identity.logoutUser(id, change);
  }

  resetPassword(id: string, passwordHash: string, change: ChangeInput): Promise<boolean> {
    return this.#identity.resetPassword(id, passwordHash, change);
  }

  deleteUser(id: string, change: ChangeInput): Promise<boolean> {
    return this.#identity.deleteUser(id, change);
  }

  recordChange(change: ChangeInput): Promise<void> {
    return this.#identity.recordChange(change);
  }

  identityTotals(now: Date): Promise<IdentityTotals> {
    return this.#identity.identityTotals(now);
  }

  async createApiKey(key: NewApiKey, change: ChangeInput): Promise<ApiKeyRecord> {
    assertValidExpiry(key.expiresAt);
    return this.#identity.createApiKey(key, change);
  }

  findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    return this.#identity.findApiKeyByHash(keyHash);
  }

  listApiKeys(query: ApiKeyQuery): Promise<ApiKeyPage> {
    return this.#identity.listApiKeys(query);
  }

  revokeApiKey(id: string, change: ChangeInput): Promise<boolean> {
    return this.#identity.revokeApiKey(id, change);
  }

  recordApiKeyUse(uses: ReadonlyMap<string, Date>): Promise<void> {
    return this.#identity.recordApiKeyUse(uses);
  }

  readChanges(afterSeq: number, notBefore: Date, limit: number): Promise<readonly ChangeRecord[]> {
    return this.#identity.readChanges(afterSeq, notBefore, limit);
  }

  lastChange(targetId: string, action: AdminAction, notBefore: Date): Promise<ChangeRecord | undefined> {
    return this.#identity.lastChange(targetId, action, notBefore);
  }

  markPendingDelete(targetId: string, emailDigest: string | null): Promise<void> {
    return this.#identity.markPendingDelete(targetId, emailDigest);
  }

  findPendingDelete(emailDigest: string, notBefore: Date): Promise<ChangeRecord | undefined> {
    return this.#identity.findPendingDelete(emailDigest, notBefore);
  }

  pruneChanges(before: Date, tokenRevocationsBefore?: Date, limit?: number): Promise<number> {
    return this.#identity.pruneChanges(before, tokenRevocationsBefore, limit);
  }

  /**
   * Readiness (/ready's user_store): asks for the schema's migration record, not just `SELECT 1`. A database dropped
   * and created again empty, or restored from a dump of an older version, answers `SELECT 1` while every request the
   * store serves fails: that store is down. One indexed read of a table of a few rows.
   */
  async ping(): Promise<void> {
    const rows = await this.#query<{ v: number | null }>(PING_SQL, []);
    const latest = postgresMigrations.at(-1)?.version ?? 0;
    if ((rows[0]?.v ?? 0) < latest) throw new StoreUnavailableError({ cause: new Error('schema not migrated') });
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }

  async #query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    return (await this.#run<R>(sql, params)).rows;
  }

  async #run<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
  }

  /**
   * Checks out one client for several statements. pg-pool takes its own 'error' listener off a client while it is
   * checked out, so a session that dies meanwhile (server restart, failover, pg_terminate_backend) would emit an
   * 'error' nobody listens to, and that crashes the process: a listener is attached for the whole checkout. A client
   * that failed (or that `mode` says was altered) is released with the failure, so the pool discards it instead of
   * handing a dead or mid-transaction session to the next caller. Any failure is thrown as StoreUnavailableError.
   */
  async #withClient<T>(use: (client: pg.PoolClient) => Promise<T>, mode: 'reuse' | 'discard' = 'reuse'): Promise<T> {
    const client = await this.#connect();
    let lost: Error | undefined;
    const onError = (err: Error): void => {
      lost ??= err;
    };
    client.on('error', onError);
    let failure: Error | undefined;
    try {
      return await use(client);
    } catch (err) {
      failure = err instanceof Error ? err : new Error('query failed');
      throw new StoreUnavailableError({ cause: err });
    } finally {
      // release() puts the pool's idle listener back synchronously, so there is no moment without a listener.
      client.release(failure ?? lost ?? (mode === 'discard' ? true : undefined));
      client.off('error', onError);
    }
  }

  /**
   * Runs `step` in one transaction; on any failure it drops the connection and throws StoreUnavailableError. No
   * ROLLBACK is sent: the session is discarded either way (#withClient releases it with the failure), and the pool's
   * end of it rolls the transaction back. That end sends PostgreSQL's Terminate when the server has answered every
   * statement, and cuts the socket when one is still unanswered (a silent link). A ROLLBACK awaited sat behind such a
   * statement (one statement in flight per connection) and doubled the request's wait; one sent and not awaited was
   * still in flight at that end, so every failed transaction's session was cut instead of closed (counted by
   * PostgreSQL as abandoned, its reset logged).
   */
  async #transaction<T>(step: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withClient(async (client) => {
      await client.query('BEGIN');
      const result = await step(client);
      await client.query('COMMIT');
      return result;
    });
  }
}

/**
 * Locks the family row of the token with `tokenHash` until the transaction ends and returns the family and its
 * user, or undefined for an unknown token. Rotation and revocation both take this lock first, so they are serialised per
 * session: a revocation never misses the token that a concurrent rotation inserts. A family whose row is gone (the
 * janitor removes it once its last token expired) has no live token, so there is nothing to serialise.
 */
async function lockFamilyOf(
  client: pg.PoolClient,
  tokenHash: string,
): Promise<{ familyId: string; userId: string } | undefined> {
  const found = await client.query<{ family_id: string; user_id: string }>(
    'SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1',
    [tokenHash],
  );
  const row = found.rows[0];
  if (row === undefined) return undefined;
  await client.query('SELECT 1 FROM refresh_token_families WHERE id = $1 FOR UPDATE', [row.family_id]);
  return { familyId: row.family_id, userId: row.user_id };
}

function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function toUser(row: UserRow): UserRecord {
  return { id: row.id, email: row.email, passwordHash: row.password_hash, createdAt: row.created_at, disabledAt: row.disabled_at };
}

/** A driver error of an insert that met the unique email of another user (createUser, registerUser). */
function isEmailTaken(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string } | undefined;
  return e?.code === '23505' && e.constraint === 'users_email_key';
}
