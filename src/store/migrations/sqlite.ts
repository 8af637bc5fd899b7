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
];
