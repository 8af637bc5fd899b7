// The identity operations of the PostgreSQL UserStore (admin listing, disable, API keys, change log), in plain SQL.
import type pg from 'pg';
import {
  apiKeyCursorId,
  cursorKeyAtMost,
  decodeCursor,
  encodeCursor,
  InvalidCursorError,
  likePrefix,
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

interface ChangeRow {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  target_id: string;
  generation: number | null;
}

function toChange(r: ChangeRow): ChangeRecord {
  return {
    seq: Number(r.seq),
    at: r.at,
    actor: r.actor as ChangeRecord['actor'],
    action: r.action as ChangeRecord['action'],
    targetId: r.target_id,
    ...(r.generation === null ? {} : { generation: r.generation }),
  };
}

/** What the queries borrow from PostgresUserStore: its error-mapped pool query and transaction helpers. */
export interface PostgresAccess {
  query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>>;
  transaction<T>(step: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** The store's schema, for the change-log lock key. */
  readonly schema: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface SummaryRow {
  id: string;
  email: string;
  created_at: Date;
  created_us: string;
  last_login_at: Date | null;
  disabled_at: Date | null;
  active_sessions: string;
}

interface ApiKeyRow {
  id: string;
  name: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/**
 * `created_us` is created_at in whole microseconds since the epoch: the cursor must keep PostgreSQL's full precision,
 * or rows created within one millisecond could be skipped or repeated across pages.
 */
const SUMMARY_COLUMNS = `u.id, u.email, u.created_at, u.last_login_at, u.disabled_at,
  ((extract(epoch FROM u.created_at) * 1000000)::numeric(20, 0))::text AS created_us,
  (SELECT COUNT(DISTINCT family_id) FROM refresh_tokens r
    WHERE r.user_id = u.id AND r.revoked_at IS NULL AND r.expires_at > $1) AS active_sessions`;

/** The identity half of the PostgreSQL adapter. Every method throws StoreUnavailableError through the access helpers. */
export class PostgresIdentity {
  readonly #db: PostgresAccess;

  constructor(access: PostgresAccess) {
    this.#db = access;
  }

  async listUsers(query: UserQuery, now: Date): Promise<UserPage> {
    const prefix = query.emailPrefix ?? '';
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // The key is microseconds: one past a Date's range would overflow bigint or timestamptz in the query.
    if (cursor !== undefined) cursorKeyAtMost(cursor.key, BigInt(MAX_DATE_MS) * 1000n);
    // A tie-break that is no user id is no cursor of ours (a SQLite one, a typo): a bad query, as SQLite answers it,
    // never an empty last page that reads as "no more users".
    if (cursor !== undefined && !UUID.test(cursor.tieBreak)) throw new InvalidCursorError();
    // PostgreSQL text cannot hold NUL (the driver refuses the query): no stored email has one.
    if (prefix.includes('\0')) return { users: [], nextCursor: null };
    const params: unknown[] = [now, query.limit + 1];
    const where: string[] = [];
    if (prefix !== '') {
      params.push(likePrefix(prefix));
      where.push(`u.email LIKE $${params.length} ESCAPE '\\'`);
    }
    if (cursor !== undefined) {
      params.push(cursor.key, cursor.tieBreak);
      // Whole microseconds added to the epoch: exact, unlike a float to_timestamp().
      where.push(
        `(u.created_at, u.id) < (timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length}::uuid)`,
      );
    }
    const { rows } = await this.#db.query<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM users u ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY u.created_at DESC, u.id DESC LIMIT $2`,
      params,
    );
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return { users: page.map(toSummary), nextCursor: more && last ? encodeCursor(last.created_us, last.id) : null };
  }

  async getUserSummary(id: string, now: Date): Promise<UserSummary | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await this.#db.query<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM users u WHERE u.id = $2`, [now, id]);
    return rows[0] ? toSummary(rows[0]) : undefined;
  }

  /**
   * Returns whether the user exists. Each user action locks the user's row, then its session families, and only then
   * stamps its time (stampChange): a login or rotation that committed before waited for nothing of ours and took its
   * token's time earlier; one that comes after finds the row changed or the sessions revoked.
   */
  async setUserDisabled(id: string, disabled: boolean, unstamped: ChangeInput): Promise<boolean> {
    if (!UUID.test(id)) return false;
    return this.#db.transaction(async (client) => {
      if (!(await lockUser(client, id))) return false;
      if (disabled) await lockFamilies(client, id);
      const stamped = stampChange(unstamped);
      const change = disabled ? { ...stamped, generation: await raiseGeneration(client, id) } : stamped;
      if (disabled) {
        await client.query('UPDATE users SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2', [change.at, id]);
        await revokeSessions(client, id, change.at);
      } else {
        await client.query('UPDATE users SET disabled_at = NULL WHERE id = $1', [id]);
      }
      await this.#append(client, change);
      return true;
    });
  }

  async logoutUser(id: string, unstamped: ChangeInput): Promise<boolean> {
    if (!UUID.test(id)) return false;
    return this.#db.transaction(async (client) => {
      if (!(await lockUser(client, id))) return false;
      await lockFamilies(client, id);
      const change = { ...stampChange(unstamped), generation: await raiseGeneration(client, id) };
      await revokeSessions(client, id, change.at);
      await this.#append(client, change);
      return true;
    });
  }

  async resetPassword(id: string, passwordHash: string, unstamped: ChangeInput): Promise<boolean> {
    if (!UUID.test(id)) return false;
    return this.#db.transaction(async (client) => {
      const updated = await client.query('UPDATE users SET password_hash = $1 WHERE id = $2', [passwordHash, id]);
      if (updated.rowCount === 0) return false;
      await lockFamilies(client, id);
      const change = { ...stampChange(unstamped), generation: await raiseGeneration(client, id) };
      await revokeSessions(client, id, change.at);
      await this.#append(client, change);
      return true;
    });
  }

  async deleteUser(id: string, unstamped: ChangeInput): Promise<boolean> {
    if (!UUID.test(id)) return false;
    return this.#db.transaction(async (client) => {
      // The locks of the other user actions, in their order, before the DELETE's own: a DELETE taken first would hold
      // the row against a rotation's key check while waiting for the family that rotation holds (a deadlock).
      if (!(await lockUser(client, id))) return false;
      await lockFamilies(client, id);
      // Raised before the row goes: the change log keeps it, and revocations refuse the user's tokens by it.
      const generation = await raiseGeneration(client, id);
      // refresh_tokens go with it (ON DELETE CASCADE).
      await client.query('DELETE FROM users WHERE id = $1', [id]);
      await this.#append(client, { ...stampChange(unstamped), ...(generation === undefined ? {} : { generation }) });
      return true;
    });
  }

  async recordChange(change: ChangeInput): Promise<void> {
    await this.#db.transaction((client) => this.#append(client, change));
  }

  async identityTotals(now: Date): Promise<IdentityTotals> {
    const { rows } = await this.#db.query<{ users: string; disabled: string; sessions: string; keys: string }>(
      `SELECT (SELECT COUNT(*) FROM users) AS users,
              (SELECT COUNT(*) FROM users WHERE disabled_at IS NOT NULL) AS disabled,
              (SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL AND expires_at > $1) AS sessions,
              (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)) AS keys`,
      [now],
    );
    const r = rows[0]!;
    return { users: Number(r.users), disabled: Number(r.disabled), activeSessions: Number(r.sessions), apiKeys: Number(r.keys) };
  }

  async createApiKey(key: NewApiKey, change: ChangeInput): Promise<ApiKeyRecord> {
    return this.#db.transaction(async (client) => {
      const { rows } = await client.query<ApiKeyRow>(
        'INSERT INTO api_keys (id, name, key_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [key.id, key.name, key.keyHash, change.at, key.expiresAt],
      );
      await this.#append(client, change);
      return toApiKey(rows[0]!);
    });
  }

  async findApiKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE key_hash = $1', [keyHash]);
    return rows[0] ? toApiKey(rows[0]) : undefined;
  }

  async listApiKeys(query: ApiKeyQuery): Promise<ApiKeyPage> {
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // Microseconds, as the users cursor: one past a Date's range would overflow bigint or timestamptz in the query.
    if (cursor !== undefined) cursorKeyAtMost(cursor.key, BigInt(MAX_DATE_MS) * 1000n);
    const params: unknown[] = [query.limit + 1];
    let after = '';
    if (cursor !== undefined) {
      params.push(cursor.key, apiKeyCursorId(cursor.tieBreak));
      after = `AND (created_at, id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::text)`;
    }
    // Through the index of live keys (migration 9), newest first: a page reads its own rows, not every key sorted.
    const { rows } = await this.#db.query<ApiKeyRow & { created_us: string }>(
      `SELECT *, ((extract(epoch FROM created_at) * 1000000)::numeric(20, 0))::text AS created_us
       FROM api_keys WHERE revoked_at IS NULL ${after} ORDER BY created_at DESC, id DESC LIMIT $1`,
      params,
    );
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return { apiKeys: page.map(toApiKey), nextCursor: more && last ? encodeCursor(last.created_us, last.id) : null };
  }

  async revokeApiKey(id: string, change: ChangeInput): Promise<boolean> {
    if (id.includes('\0')) return false; // no stored id has one, and the driver would refuse the query
    return this.#db.transaction(async (client) => {
      const updated = await client.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [change.at, id]);
      if (updated.rowCount === 0) return false;
      await this.#append(client, change);
      return true;
    });
  }

  async recordApiKeyUse(uses: ReadonlyMap<string, Date>): Promise<void> {
    if (uses.size === 0) return;
    // One statement for the whole batch; GREATEST keeps a later time written by another gateway.
    await this.#db.query(
      `UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
       FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`,
      [[...uses.keys()], [...uses.values()]],
    );
  }

  async readChanges(afterSeq: number, notBefore: Date, limit: number): Promise<readonly ChangeRecord[]> {
    const { rows } = await this.#db.query<ChangeRow>('SELECT * FROM identity_changes WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3', [
      afterSeq,
      notBefore,
      limit,
    ]);
    return rows.map(toChange);
  }

  async lastChange(targetId: string, action: AdminAction, notBefore: Date): Promise<ChangeRecord | undefined> {
    // The at index bounds the scan to the window (minutes of admin actions); no index on target_id is needed.
    const { rows } = await this.#db.query<ChangeRow>(
      'SELECT * FROM identity_changes WHERE at >= $1 AND target_id = $2 AND action = $3 ORDER BY seq DESC LIMIT 1',
      [notBefore, targetId, action],
    );
    return rows[0] === undefined ? undefined : toChange(rows[0]);
  }

  async markPendingDelete(targetId: string, emailDigest: string | null): Promise<void> {
    if (emailDigest === null) {
      await this.#db.query(
        "UPDATE identity_changes SET email_digest = NULL WHERE target_id = $1 AND action = 'delete' AND email_digest IS NOT NULL",
        [targetId],
      );
      return;
    }
    await this.#db.query(
      `UPDATE identity_changes SET email_digest = $2
       WHERE seq = (SELECT max(seq) FROM identity_changes WHERE target_id = $1 AND action = 'delete')`,
      [targetId, emailDigest],
    );
  }

  async findPendingDelete(emailDigest: string, notBefore: Date): Promise<ChangeRecord | undefined> {
    const { rows } = await this.#db.query<ChangeRow>(
      "SELECT * FROM identity_changes WHERE email_digest = $1 AND at >= $2 AND action = 'delete' ORDER BY seq DESC LIMIT 1",
      [emailDigest, notBefore],
    );
    return rows[0] === undefined ? undefined : toChange(rows[0]);
  }

  async pruneChanges(before: Date, tokenRevocationsBefore: Date = before, limit?: number): Promise<number> {
    let deleted: number;
    if (limit === undefined) {
      const result = await this.#db.query('DELETE FROM identity_changes WHERE at < $1 OR (action = $2 AND at < $3)', [
        before,
        TOKEN_REVOCATION,
        tokenRevocationsBefore,
      ]);
      deleted = result.rowCount ?? 0;
    } else {
      // Two ranges of the at index, each stopped at the limit (as the SQLite adapter, whose OR read every old row).
      const old = await this.#db.query(
        'DELETE FROM identity_changes WHERE seq IN (SELECT seq FROM identity_changes WHERE at < $1 LIMIT $2)',
        [before, limit],
      );
      deleted = old.rowCount ?? 0;
      if (deleted < limit) {
        const tokens = await this.#db.query(
          'DELETE FROM identity_changes WHERE seq IN (SELECT seq FROM identity_changes WHERE action = $1 AND at < $2 LIMIT $3)',
          [TOKEN_REVOCATION, tokenRevocationsBefore, limit - deleted],
        );
        deleted += tokens.rowCount ?? 0;
      }
    }
    // A pending delete's email digest is only needed while its retry can matter (the tokens' lifetime).
    await this.#db.query('UPDATE identity_changes SET email_digest = NULL WHERE email_digest IS NOT NULL AND at < $1', [tokenRevocationsBefore]);
    return deleted;
  }

  /**
   * Appends to the change log under a transaction-scoped advisory lock: writers then commit in seq order, so a
   * reader that has seen seq N can never later find a smaller seq committed (a bare BIGSERIAL does not promise that).
   */
  /** Appends `change` inside the caller's transaction (a user created with its change row: postgres.ts createUser). */
  appendChange(client: pg.PoolClient, change: ChangeInput): Promise<void> {
    return this.#append(client, change);
  }

  async #append(client: pg.PoolClient, change: ChangeInput): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`portcullis:changes:${this.#db.schema}`]);
    await client.query('INSERT INTO identity_changes (at, actor, action, target_id, generation) VALUES ($1, $2, $3, $4, $5)', [
      change.at,
      change.actor,
      change.action,
      change.targetId,
      change.generation ?? null,
    ]);
  }
}

/**
 * Locks the user's row against a concurrent login (createRefreshToken takes the same lock) and says whether it
 * exists. NO KEY UPDATE, not UPDATE: a rotation holding one of the user's families checks the row's key (FOR KEY
 * SHARE, its foreign key) and must not wait on us while we wait on its family.
 */
async function lockUser(client: pg.PoolClient, userId: string): Promise<boolean> {
  const found = await client.query('SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE', [userId]);
  return (found.rowCount ?? 0) > 0;
}

/**
 * Locks the user's session families, in one order (as revokeAllForUser does), so no rotation is half-way: one that
 * inserted a new token has committed before revokeSessions reads, and its new token is revoked too.
 */
async function lockFamilies(client: pg.PoolClient, userId: string): Promise<void> {
  await client.query('SELECT id FROM refresh_token_families WHERE user_id = $1 ORDER BY id FOR UPDATE', [userId]);
}

/**
 * Raises the user's token generation and returns the new one (undefined for an unknown user). Call under the user's
 * row lock, after lockFamilies: a login waiting for that lock reads the raised one, a session committed before holds
 * a lower one.
 */
export async function raiseGeneration(client: pg.PoolClient, userId: string): Promise<number | undefined> {
  const { rows } = await client.query<{ token_generation: number }>(
    'UPDATE users SET token_generation = token_generation + 1 WHERE id = $1 RETURNING token_generation',
    [userId],
  );
  return rows[0]?.token_generation;
}

/** Revokes every session of the user; call after lockFamilies. */
async function revokeSessions(client: pg.PoolClient, userId: string, at: Date): Promise<void> {
  await client.query('UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL', [at, userId]);
}

function toSummary(row: SummaryRow): UserSummary {
  return {
    id: row.id,
    email: row.email,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
    disabled: row.disabled_at !== null,
    activeSessions: Number(row.active_sessions),
  };
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
