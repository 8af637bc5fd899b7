// Runs the UserStore contract against PostgreSQL in a unique schema per run (dropped afterwards), plus outage timing.
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresUserStore } from '../../src/store/postgres.js';
import { StoreUnavailableError } from '../../src/store/user-store.js';
import { userStoreContract } from './user-store.contract.js';
import { identityStoreContract } from './identity-store.contract.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';

const url = DATABASE_URL;
const schema = `pc_test_${randomBytes(6).toString('hex')}`;

async function admin<T>(step: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await step(client);
  } finally {
    await client.end();
  }
}

// Throws (the file fails) under CI=true when PostgreSQL is unreachable; otherwise a skip message.
const skip = await requirePostgres();
if (skip) {
  test('UserStore contract: postgres', { skip }, () => {});
} else {
  identityStoreContract('postgres', { open: async () => openPostgresUserStore({ url, schema, poolSize: 4 }) });
  userStoreContract('postgres', {
    open: async () => openPostgresUserStore({ url, schema, poolSize: 4 }),
    deleteUserRaw: (id) => admin(async (c) => void (await c.query(`DELETE FROM "${schema}".users WHERE id = $1`, [id]))),
    cleanup: () => admin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))),
    holdUser: async (userId) => {
      // The user's row lock, as a log-out or user action holds it while it runs.
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      await client.connect();
      await client.query('BEGIN');
      await client.query(`SELECT 1 FROM "${schema}".users WHERE id = $1 FOR NO KEY UPDATE`, [userId]);
      return async () => {
        await client.query('COMMIT');
        await client.end();
      };
    },
  });
}

describe('PostgreSQL adapter outages', () => {
  test('a server that refuses connections gives StoreUnavailableError within the connect timeout', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const store = openPostgresUserStore({ url: 'postgres://postgres@127.0.0.1:1/none', schema: 'public' });
    const started = performance.now();
    try {
      await assert.rejects(store.findUserByEmail('a@example.com'), StoreUnavailableError);
      await assert.rejects(store.migrate(), StoreUnavailableError);
    } finally {
      await store.close();
    }
    assert.ok(performance.now() - started < 5000);
  });

  test('an invalid schema name is refused before any SQL is built', () => {
    assert.throws(() => openPostgresUserStore({ url, schema: 'x"; DROP TABLE users; --' }), TypeError);
  });
});
