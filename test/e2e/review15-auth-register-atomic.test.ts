// A registration the store failed half-way (the account inserted, then its session's insert held past the statement
// timeout: a `portcullis migrate` building an index on refresh_tokens, or PostgreSQL going away between the two) was
// answered 503 and left the account behind: the client's retry got 409 email_taken for an account it never had a
// session of. Now the account and its first session are one transaction: a 503 created nothing, and the retry is 201.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import { isolatedDatabase, taggedUrl, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';

const skip = await requirePostgres();

describe('registration on PostgreSQL, its session held past the statement timeout', { skip }, () => {
  let db: IsolatedDatabase;
  let url: string;
  let stack: AuthStack;
  before(async () => {
    db = await isolatedDatabase();
    url = taggedUrl(db.name, 'pc_register_atomic');
    stack = await startAuthStack({ database: { url } });
  });
  after(async () => {
    await stack?.close();
    await db?.cleanup('');
  });

  test('a 503 created nothing: the retry registers the same email (201), not 409', async () => {
    const email = uniqueEmail('atomic');
    const body = { email, password: 'SecurePass123!' };
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      // What an index build on refresh_tokens holds: inserts into it wait, past the store's 5 s statement timeout.
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE refresh_tokens IN EXCLUSIVE MODE');
      const first = await stack.client.postJson(`${stack.url}/auth/register`, body);
      assert.equal(first.status, 503, first.text);
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    const retry = await stack.client.postJson(`${stack.url}/auth/register`, body);
    assert.equal(retry.status, 201, retry.text);
    const login = await stack.client.postJson(`${stack.url}/auth/login`, body);
    assert.equal(login.status, 200, 'the account the retry made is the one that logs in');
  });
});
