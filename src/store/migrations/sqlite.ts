// SQLite schema migrations, numbered. Timestamps are integer milliseconds since the epoch; ids are UUID text.
import type { Migration } from './types.js';

/** The SQLite migrations, in order. Append new ones; never edit a shipped one. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'init users',
    statements: [
      `CREATE TABLE users (
        id TEXT PRIMARY KEY NOT NULL,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    name: 'init refresh tokens',
    statements: [
      `CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        family_id TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        replaced_by TEXT
      )`,
      'CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens(user_id)',
      'CREATE INDEX idx_refresh_tokens_family_id ON refresh_tokens(family_id)',
      'CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens(expires_at)',
    ],
  },
  {
    version: 3,
    name: 'identity: disabled users, last login, api keys, change log',
    statements: [
      'ALTER TABLE users ADD COLUMN disabled_at INTEGER',
      'ALTER TABLE users ADD COLUMN last_login_at INTEGER',
      'CREATE INDEX idx_users_created ON users(created_at, id)',
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER,
        revoked_at INTEGER
      )`,
      // AUTOINCREMENT: a seq is never reused, so a poller's "after seq N" stays meaningful after pruning.
      `CREATE TABLE identity_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_id TEXT NOT NULL
      )`,
      'CREATE INDEX idx_identity_changes_at ON identity_changes(at)',
    ],
  },
  {
    version: 4,
    name: 'users listed by (created_at, rowid)',
    // created_at has millisecond resolution and ids are random, so (created_at, id) let a user added in the same
    // millisecond as a page's last row sort after it and show up on the next page. A new row's rowid is above every
    // existing one, and an index on created_at carries it, so (created_at, rowid) is both the insertion-stable order
    // and the index order.
    statements: ['DROP INDEX idx_users_created', 'CREATE INDEX idx_users_created_at ON users(created_at)'],
  },
  {
    version: 5,
    name: 'pending deletes by email digest',
    statements: [
      // Set only on a delete addressed by email whose revocation is pending, and cleared once it is written.
      'ALTER TABLE identity_changes ADD COLUMN email_digest TEXT',
      'CREATE INDEX idx_identity_changes_email_digest ON identity_changes(email_digest) WHERE email_digest IS NOT NULL',
    ],
  },
  {
    version: 6,
    name: 'token generations',
    statements: [
      // Raised inside the write lock by every action that revokes all of a user's tokens; access tokens carry the
      // value they were issued under (claim `gen`), so revocations no longer compare clocks of different hosts.
      'ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0',
      // The generation a revoking change raised the user to, so a replay of the change log writes the same one.
      'ALTER TABLE identity_changes ADD COLUMN generation INTEGER',
    ],
  },
  {
    version: 7,
    name: 'live sessions by expiry',
    statements: [
      // The dashboard's active-session count (identityTotals) reads this index alone: without it the count walked every
      // refresh token, expired and revoked ones too, on the event loop (1.7 s with a million rows, every 5 s a
      // dashboard was open).
      'CREATE INDEX idx_refresh_tokens_live ON refresh_tokens(expires_at, revoked_at) WHERE revoked_at IS NULL',
    ],
  },
  {
    version: 8,
    name: 'change log by action and time',
    statements: [
      // The janitor prunes single-session logouts (revoke_token) sooner than the rest, in steps: through the at index
      // alone a step read every row older than the token lifetime, a week of the log, to find the few of that action.
      'CREATE INDEX idx_identity_changes_action_at ON identity_changes(action, at)',
    ],
  },
  {
    version: 9,
    name: 'sessions by user and revocation, live api keys by creation',
    statements: [
      // A login reads the user's latest revocation time (createRefreshToken's wait for a revocation of the same
      // millisecond), and the revoking actions find the user's live sessions: through user_id alone both read every
      // token of the user (50 ms on the event loop for a user holding 100,000 sessions). It leads with user_id, so it
      // serves the foreign key's cascade and every lookup the user_id index did; that one goes.
      'CREATE INDEX idx_refresh_tokens_user_revoked ON refresh_tokens(user_id, revoked_at)',
      'DROP INDEX idx_refresh_tokens_user_id',
      // GET /admin/api-keys pages newest first through this (keyset on created_at, id) instead of sorting every key.
      'CREATE INDEX idx_api_keys_live ON api_keys(created_at, id) WHERE revoked_at IS NULL',
      // The user's token generation a session was issued under. A revoking action raises the user's, which refuses
      // every session below it at once (rotateRefreshToken), and then revokes their rows a step at a time instead of
      // in one UPDATE on the event loop. Added without rewriting the table (a constant default).
      'ALTER TABLE refresh_tokens ADD COLUMN generation INTEGER NOT NULL DEFAULT 0',
      // A live session was issued under its user's current generation (each raise revoked every session below it),
      // so that is what the live ones of users ever raised get; revoked ones can never be refreshed again anyway.
      `UPDATE refresh_tokens SET generation = (SELECT u.token_generation FROM users u WHERE u.id = refresh_tokens.user_id)
       WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE token_generation > 0)`,
    ],
  },
  {
    version: 10,
    name: 'absolute session lifetime',
    statements: [
      // When the session (family) ends whatever its refreshes (jwt.refresh_token_absolute_expiration), copied to each
      // rotated token; NULL: none yet (a session started before this version takes one at its next rotation) or
      // the limit off.
      'ALTER TABLE refresh_tokens ADD COLUMN session_expires_at INTEGER',
    ],
  },
];
