// PostgreSQL schema migrations, numbered. Run with search_path set to the store's schema, so names are unqualified.
import type { Migration } from './types.js';

/** The PostgreSQL migrations, in order. Append new ones; never edit a shipped one. */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'init users',
    statements: [
      `CREATE TABLE users (
        id UUID PRIMARY KEY,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        CONSTRAINT users_email_key UNIQUE (email)
      )`,
    ],
  },
  {
    version: 2,
    name: 'init refresh tokens',
    statements: [
      `CREATE TABLE refresh_tokens (
        id UUID PRIMARY KEY,
        user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        family_id UUID NOT NULL,
        token_hash TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        revoked_at TIMESTAMPTZ,
        replaced_by UUID,
        CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
      )`,
      'CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens(user_id)',
      'CREATE INDEX idx_refresh_tokens_family_id ON refresh_tokens(family_id)',
      'CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens(expires_at)',
    ],
  },
  {
    version: 3,
    name: 'refresh token families',
    statements: [
      // One row per session: rotation and revocation lock it (SELECT … FOR UPDATE) to serialise per session.
      `CREATE TABLE refresh_token_families (
        id UUID PRIMARY KEY,
        user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      'CREATE INDEX idx_refresh_token_families_user_id ON refresh_token_families(user_id)',
      `INSERT INTO refresh_token_families (id, user_id)
       SELECT DISTINCT family_id, user_id FROM refresh_tokens ON CONFLICT (id) DO NOTHING`,
    ],
  },
  {
    version: 4,
    name: 'identity: disabled users, last login, api keys, change log',
    statements: [
      'ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled_at TIMESTAMPTZ',
      'ALTER TABLE users ADD COLUMN IF NOT EXISTS last_login_at TIMESTAMPTZ',
      'CREATE INDEX IF NOT EXISTS idx_users_created ON users(created_at, id)',
      // Email prefix search (LIKE 'x%') can use a btree only with the pattern operator class.
      'CREATE INDEX IF NOT EXISTS idx_users_email_pattern ON users(email text_pattern_ops)',
      `CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        expires_at TIMESTAMPTZ,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
      )`,
      `CREATE TABLE IF NOT EXISTS identity_changes (
        seq BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_id TEXT NOT NULL
      )`,
      'CREATE INDEX IF NOT EXISTS idx_identity_changes_at ON identity_changes(at)',
    ],
  },
  {
    version: 5,
    name: 'pending deletes by email digest',
    statements: [
      // Set only on a delete addressed by email whose revocation is pending, and cleared once it is written.
      'ALTER TABLE identity_changes ADD COLUMN IF NOT EXISTS email_digest TEXT',
      'CREATE INDEX IF NOT EXISTS idx_identity_changes_email_digest ON identity_changes(email_digest) WHERE email_digest IS NOT NULL',
    ],
  },
  {
    version: 6,
    name: 'token generations',
    statements: [
      // Raised under the user's row lock by every action that revokes all of a user's tokens; access tokens carry the
      // value they were issued under (claim `gen`), so revocations no longer compare clocks of different hosts.
      'ALTER TABLE users ADD COLUMN IF NOT EXISTS token_generation INTEGER NOT NULL DEFAULT 0',
      // The generation a revoking change raised the user to, so a replay of the change log writes the same one.
      'ALTER TABLE identity_changes ADD COLUMN IF NOT EXISTS generation INTEGER',
    ],
  },
  {
    version: 7,
    name: 'live sessions by expiry',
    statements: [
      // The dashboard's active-session count (identityTotals) reads this index alone (an index-only scan once the
      // table is vacuumed) instead of every refresh token, expired and revoked ones too.
      'CREATE INDEX IF NOT EXISTS idx_refresh_tokens_live ON refresh_tokens(expires_at) WHERE revoked_at IS NULL',
    ],
  },
  {
    version: 8,
    name: 'change log by action and time',
    statements: [
      // The janitor prunes single-session logouts (revoke_token) sooner than the rest, in steps: through the at index
      // alone a step read every row older than the token lifetime, a week of the log, to find the few of that action.
      'CREATE INDEX IF NOT EXISTS idx_identity_changes_action_at ON identity_changes(action, at)',
    ],
  },
  {
    version: 9,
    name: 'sessions by user and revocation, live api keys by creation',
    statements: [
      // A login reads the user's latest revocation time, and the revoking actions find the user's live sessions:
      // through user_id alone both read every token of the user. It leads with user_id, so it serves the foreign key's
      // cascade and every lookup the user_id index did; that one goes.
      'CREATE INDEX IF NOT EXISTS idx_refresh_tokens_user_revoked ON refresh_tokens(user_id, revoked_at)',
      'DROP INDEX IF EXISTS idx_refresh_tokens_user_id',
      // GET /admin/api-keys pages newest first through this (keyset on created_at, id) instead of sorting every key.
      'CREATE INDEX IF NOT EXISTS idx_api_keys_live ON api_keys(created_at, id) WHERE revoked_at IS NULL',
    ],
  },
  {
    version: 10,
    name: 'absolute session lifetime',
    statements: [
      // When the session (family) ends whatever its refreshes (jwt.refresh_token_absolute_expiration), copied to each
      // rotated token; NULL: none yet (a session started before this version takes one at its next rotation) or
      // the limit off.
      'ALTER TABLE refresh_tokens ADD COLUMN IF NOT EXISTS session_expires_at TIMESTAMPTZ',
    ],
  },
];
