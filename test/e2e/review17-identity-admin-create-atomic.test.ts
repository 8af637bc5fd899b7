// What was wrong: `POST /admin/users` (and `portcullis users create`) wrote the account, then its change-log row, as
// two store calls. A store that failed between them answered 503 yet kept the account, with no change row, audit
// line or metric: the operator's retry, as the 503 invites, got 409 email_taken. `/auth/register` had been made one
// transaction; the admin path had not.
// What is right now: the account and its change row are one transaction, on SQLite and PostgreSQL: a failed create
// creates nothing, and the retry is 201.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';
import { Database } from '../helpers/large-sqlite-store.js';
import { SQLITE_FILE_NAME } from '../../src/store/sqlite.js';
import { isolatedDatabase, taggedUrl, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';

const client = createClient();
let backend: TestBackend;
before(async () => (backend = await startBackend('echo')));
after(async () => {
  await client.close();
  await backend?.stop();
});

function gatewayConfig(extra: ConfigInput = {}): ConfigInput {
  return {
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    admin: { token: ADMIN_TOKEN },
    ...extra,
  };
}

/** Creates a user while `failing` makes the change-log insert fail, then once more after `restore`. */
async function createThroughFailure(gw: InProcessGateway, failing: () => Promise<void>, restore: () => Promise<void>): Promise<void> {
  const admin = adminApi(client, gw.adminUrl!);
  const email = uniqueEmail('atomic-admin');
  const body = { email, password: 'a-long-password' };
  await failing();
  try {
    const first = await admin.post('/admin/users', body);
    assert.equal(first.status, 503, first.text);
  } finally {
    await restore();
  }
  assert.equal((await admin.get(`/admin/users/${encodeURIComponent(email)}`)).status, 404, 'the failed create left the account');
  assert.equal(gw.logs.filter((l) => l.action === 'create_user').length, 0, 'an audit line for what was not committed');
  const retry = await admin.post('/admin/users', body);
  assert.equal(retry.status, 201, retry.text);
  const id = retry.json<{ user_id: string }>().user_id;
  assert.ok(gw.logs.some((l) => l.action === 'create_user' && l.target_id === id), 'the audit line of the committed create');
}

describe('admin create on SQLite, its change row refused', () => {
  let gw: InProcessGateway;
  before(async () => (gw = await startInProcess(gatewayConfig())));
  after(async () => gw?.close());

  test('a failed create leaves no account: the retry is 201, not 409', async () => {
    const db = new Database(join(gw.dataDir, SQLITE_FILE_NAME));
    try {
      await createThroughFailure(
        gw,
        async () => void db.exec("CREATE TRIGGER refuse_changes BEFORE INSERT ON identity_changes BEGIN SELECT RAISE(ABORT, 'refused'); END"),
        async () => void db.exec('DROP TRIGGER refuse_changes'),
      );
    } finally {
      db.close();
    }
  });
});

const skip = await requirePostgres();

describe('admin create on PostgreSQL, its change row held past the statement timeout', { skip }, () => {
  let db: IsolatedDatabase;
  let gw: InProcessGateway;
  let url: string;
  before(async () => {
    db = await isolatedDatabase();
    url = taggedUrl(db.name, 'pc_admin_create_atomic');
    gw = await startInProcess(gatewayConfig({ database: { url } }));
  });
  after(async () => {
    await gw?.close();
    await db?.cleanup('');
  });

  test('a 503 created nothing: the retry is 201, not 409', async () => {
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await createThroughFailure(
        gw,
        async () => {
          await holder.query('BEGIN');
          await holder.query('LOCK TABLE identity_changes IN EXCLUSIVE MODE');
        },
        async () => void (await holder.query('COMMIT')),
      );
    } finally {
      await holder.end();
    }
  });
});
