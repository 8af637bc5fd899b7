// GET /admin/api-keys and GET /admin/users ran one user-store query per request, on the pool the proxy port's logins,
// API keys and revocations wait on. With the store slow (here: a table locked by another session), a few concurrent
// listings took every pool connection, and a login on the proxy port waited behind them until their statement
// timeout. Now identical listings that arrive together share one query (begun after each of them arrived, so a
// listing still shows every change committed before it); different queries each run their own. Shown by counting the
// gateway's sessions waiting on the lock (pg_stat_activity), never by timing: at most one per distinct listing, where
// there were as many as the pool holds; and by a login answered while the listings wait.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { requirePostgres } from '../helpers/services.js';
import {
  isolatedDatabase,
  lockWaiters,
  spawnPostgresAuthGateway,
  taggedUrl,
  uniqueApplicationName,
  type IsolatedDatabase,
} from '../helpers/postgres-db.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient();
const skip = await requirePostgres();
const appName = uniqueApplicationName('r9list');
const PASSWORD = 'SecurePass123!';
let db: IsolatedDatabase | undefined;
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;
let adminUrl: string;

before(async () => {
  if (skip) return;
  db = await isolatedDatabase();
  backend = await startBackend('echo');
  // A pool of 4 (spawnPostgresAuthGateway's), so four stuck listings took all of it.
  gw = await spawnPostgresAuthGateway(taggedUrl(db.name, appName), backend.port, { token: ADMIN_TOKEN });
  adminUrl = `http://127.0.0.1:${gw.adminPort}`;
  const admin = adminApi(client, adminUrl);
  for (const email of ['r9-list-a@example.com', 'r9-list-b@example.com']) {
    const res = await admin.post('/admin/users', { email, password: PASSWORD });
    assert.equal(res.status, 201, res.text);
  }
  assert.equal((await admin.post('/admin/api-keys', { name: 'r9-list' })).status, 201);
});
after(async () => {
  await gw?.cleanup();
  await backend?.stop();
  await db?.cleanup('r9-list-');
});

/** A session of the test's own holding `table` locked until `release`. */
async function lockTable(table: string): Promise<{ release(): Promise<void> }> {
  const holder = new pg.Client({ connectionString: taggedUrl(db!.name, `${appName}_holder`) });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end().catch(() => undefined);
    },
  };
}

/** Each path requested on a connection of its own, all at once; the answers' statuses and bodies. */
function concurrently(paths: readonly string[]): Promise<{ status: number; text: string }[]> {
  return Promise.all(
    paths.map(async (path) => {
      const res = await fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(30_000) });
      return { status: res.status, text: await res.text() };
    }),
  );
}

/** The most gateway sessions seen waiting on the lock at once, sampled until `until` resolves. */
async function mostWaiting(until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  let most = 0;
  while (!done) {
    most = Math.max(most, (await lockWaiters(appName)).length);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return most;
}

test('concurrent GET /admin/api-keys share one query; a login on the proxy port is answered meanwhile', { skip }, async () => {
  const lock = await lockTable('api_keys');
  let listings: Promise<{ status: number; text: string }[]> | undefined;
  try {
    listings = concurrently(Array.from({ length: 12 }, () => '/admin/api-keys'));
    await waitFor(async () => (await lockWaiters(appName)).length >= 1, 'a listing waits on the lock', 10_000);
    // The login needs a pool connection: before, the listings held all four until their statement timeout.
    const login = client.postJson(`${gw!.url}/auth/login`, { email: 'r9-list-a@example.com', password: PASSWORD });
    const most = await mostWaiting(login);
    assert.equal((await login).status, 200, 'the login is answered while the listings wait');
    assert.equal(most, 1, `${most} listing queries waited at once for 12 identical listings`);
  } finally {
    await lock.release();
  }
  for (const answer of await listings!) {
    assert.equal(answer.status, 200, answer.text);
    const body = JSON.parse(answer.text) as { api_keys: { name: string }[] };
    assert.deepEqual(body.api_keys.map((k) => k.name), ['r9-list']);
  }
  // A listing after a change shows it: nothing is kept once a query has answered.
  const admin = adminApi(client, adminUrl);
  assert.equal((await admin.post('/admin/api-keys', { name: 'r9-list-2' })).status, 201);
  const after = JSON.parse((await admin.get('/admin/api-keys')).text) as { api_keys: { name: string }[] };
  assert.deepEqual(after.api_keys.map((k) => k.name).sort(), ['r9-list', 'r9-list-2']);
});

test('concurrent GET /admin/users share one query per distinct listing, each answered its own page', { skip }, async () => {
  const lock = await lockTable('users');
  let listings: Promise<{ status: number; text: string }[]> | undefined;
  const paths = [...Array.from({ length: 10 }, () => '/admin/users?limit=1'), ...Array.from({ length: 5 }, () => '/admin/users?email=r9-list-b@example.com')];
  try {
    listings = concurrently(paths);
    await waitFor(async () => (await lockWaiters(appName)).length >= 2, 'both listings wait on the lock', 10_000);
    // Sampled a while longer: before, up to the pool's four were seen waiting.
    const most = await mostWaiting(new Promise((resolve) => setTimeout(resolve, 1_000)));
    assert.equal(most, 2, `${most} listing queries waited at once for 2 distinct listings`);
  } finally {
    await lock.release();
  }
  const answers = await listings!;
  for (const [i, answer] of answers.entries()) {
    assert.equal(answer.status, 200, answer.text);
    const users = (JSON.parse(answer.text) as { users: { email: string }[] }).users;
    if (paths[i]!.includes('email=')) assert.deepEqual(users.map((u) => u.email), ['r9-list-b@example.com']);
    else assert.equal(users.length, 1);
  }
});

test('admin reads that differ take turns: at most two on the pool at once, every one answered', { skip }, async () => {
  const lock = await lockTable('users');
  let listings: Promise<{ status: number; text: string }[]> | undefined;
  const paths = [
    ...Array.from({ length: 8 }, (_, i) => `/admin/users?email=r9-list-${i % 2 === 0 ? 'a' : `none-${i}`}@example.com`),
    ...Array.from({ length: 4 }, () => '/admin/users/r9-list-b@example.com'),
    '/admin/users?limit=2',
  ];
  try {
    listings = concurrently(paths);
    await waitFor(async () => (await lockWaiters(appName)).length >= 2, 'two reads wait on the lock', 10_000);
    // Sampled a while longer: before, the pool's four were seen waiting.
    const most = await mostWaiting(new Promise((resolve) => setTimeout(resolve, 1_000)));
    assert.equal(most, 2, `${most} admin reads waited at once`);
  } finally {
    await lock.release();
  }
  for (const [i, answer] of (await listings!).entries()) {
    assert.equal(answer.status, 200, `${paths[i]}: ${answer.text}`);
    const body = JSON.parse(answer.text) as { users?: { email: string }[]; email?: string };
    if (paths[i]!.includes('email=r9-list-a')) assert.deepEqual(body.users!.map((u) => u.email), ['r9-list-a@example.com']);
    else if (paths[i]!.includes('email=')) assert.deepEqual(body.users, []);
    else if (paths[i]!.includes('limit=2')) assert.equal(body.users!.length, 2);
    else assert.equal(body.email, 'r9-list-b@example.com');
  }
});
