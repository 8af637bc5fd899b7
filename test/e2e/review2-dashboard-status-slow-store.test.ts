// GET /api/status (the dashboard's refresh) does not wait on a slow user store for its Users totals. Before, each
// request whose totals were older than 5 s queried the store and waited for it: with PostgreSQL stuck behind a lock
// (a migration's or VACUUM FULL's ACCESS EXCLUSIVE) or a stalled link, every status answer took the statement
// timeout (5 s), the dashboard gave up on it at 5 s and showed the whole gateway "disconnected" with none of its
// traffic or upstreams, during a store incident; and every refresh of every open dashboard added one more waiting
// query to the pool the proxy's logins and API keys use. Now the totals read is shared by concurrent requests and
// waited for at most 1 s (the readiness checks' bound): the answer comes with the last known totals (null before any).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';

const skip = await requirePostgres();
const appName = uniqueApplicationName('r2status');
let backend: TestBackend | undefined;
let db: IsolatedDatabase | undefined;
let gw: InProcessGateway | undefined;
let locker: pg.Client | undefined;

before(async () => {
  if (skip) return;
  backend = await startBackend('one');
  db = await isolatedDatabase();
  gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    database: { url: taggedUrl(db.name, appName), pool_size: 4 },
    admin: { token: ADMIN_TOKEN },
  });
});

after(async () => {
  await locker?.end().catch(() => undefined);
  await gw?.close();
  await db?.cleanup('r2status-none-');
  await backend?.stop();
});

async function status(): Promise<{ ms: number; body: Record<string, unknown> }> {
  const started = Date.now();
  const res = await fetch(`${gw!.adminUrl}/api/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  return { ms: Date.now() - started, body: (await res.json()) as Record<string, unknown> };
}

test('a user store stuck behind a lock slows no status answer past 1 s, and concurrent ones share one query', { skip }, async () => {
  const url = new URL(DATABASE_URL);
  url.pathname = `/${db!.name}`;
  locker = new pg.Client({ connectionString: url.toString() });
  await locker.connect();
  // Every totals query now waits on this lock until the gateway's statement timeout (5 s).
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');

  const first = await Promise.all([status(), status(), status()]);
  for (const { ms, body } of first) {
    assert.ok(ms < 2_000, `status answered after ${ms} ms with the store stuck`);
    assert.ok(Array.isArray(body.upstreams) && body.upstreams.length === 1, 'the traffic and upstreams are there');
    assert.ok(body.identity !== undefined, 'the Users panel is kept');
  }
  const waiting = await lockWaiters(appName);
  assert.ok(waiting.length <= 1, `${waiting.length} totals queries waiting on the lock for three status requests`);
  // Later refreshes while the first query still waits add none.
  for (let i = 0; i < 3; i++) assert.ok((await status()).ms < 2_000);
  assert.ok((await lockWaiters(appName)).length <= 1);

  // Once the lock goes, the totals come back.
  await locker.query('ROLLBACK');
  let identity: { totals: { users: number } | null } | undefined;
  for (let i = 0; i < 40 && !identity?.totals; i++) {
    identity = (await status()).body.identity as typeof identity;
    if (!identity?.totals) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(typeof identity?.totals?.users, 'number', JSON.stringify(identity));
});
