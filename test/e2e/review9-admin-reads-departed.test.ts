// The admin API's user-store reads take turns, at most two at once (371379c). A read whose client had left while it
// waited for its turn still ran when its turn came: after a store outage (here: the users table locked by another
// session) every read queued by clients long gone took a pool connection, up to the statement timeout each, one pair
// after another, while the reads of clients still waiting queued behind them, and each kept its request in memory
// until then. Now a read whose client (every client, for a shared listing) has left is dropped at its turn. Shown by
// counting the gateway's sessions waiting on the lock (pg_stat_activity) once the reads running when the clients left
// have ended: before, the queued reads of departed clients took their place; after, none.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { requirePostgres } from '../helpers/services.js';
import { isolatedDatabase, lockWaiters, spawnPostgresAuthGateway, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient();
const skip = await requirePostgres();
const appName = uniqueApplicationName('r9gone');
let db: IsolatedDatabase | undefined;
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;
let adminUrl: string;

before(async () => {
  if (skip) return;
  db = await isolatedDatabase();
  backend = await startBackend('echo');
  gw = await spawnPostgresAuthGateway(taggedUrl(db.name, appName), backend.port, { token: ADMIN_TOKEN });
  adminUrl = `http://127.0.0.1:${gw.adminPort}`;
  const res = await adminApi(client, adminUrl).post('/admin/users', { email: 'r9-gone-a@example.com', password: 'SecurePass123!' });
  assert.equal(res.status, 201, res.text);
});
after(async () => {
  await gw?.cleanup();
  await backend?.stop();
  await db?.cleanup('r9-gone-');
});

/** Sends GET `path` on a connection of its own; resolves once it is sent, with the socket (nothing read). */
function sendAndHold(path: string): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw!.adminPort!, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`, () => resolve(socket));
    });
    socket.on('error', reject);
  });
}

/** The most gateway sessions seen waiting on the lock at once over `ms`. */
async function mostWaiting(ms: number): Promise<number> {
  const end = Date.now() + ms;
  let most = 0;
  while (Date.now() < end) {
    most = Math.max(most, (await lockWaiters(appName)).length);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return most;
}

for (const [name, pathOf] of [
  ['GET /admin/users/{id}', (i: number) => `/admin/users/r9-gone-${i}@example.com`],
  ['GET /admin/users listings', (i: number) => `/admin/users?email=r9-gone-${i}@example.com`],
] as const) {
  test(`${name} of clients that left while waiting their turn never reach the store`, { skip }, async () => {
    const holder = new pg.Client({ connectionString: taggedUrl(db!.name, `${appName}_holder`) });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    try {
      const sockets = [];
      for (let i = 0; i < 6; i++) sockets.push(await sendAndHold(pathOf(i)));
      await waitFor(async () => (await lockWaiters(appName)).length >= 2, 'two reads wait on the lock', 10_000);
      const first = await lockWaiters(appName);
      for (const socket of sockets) socket.destroy();
      // The two reads under way run to their statement timeout (5 s); then the four queued ones get their turns.
      await waitFor(async () => !(await lockWaiters(appName)).some((pid) => first.includes(pid)), 'the first reads end', 15_000);
      const most = await mostWaiting(1_000);
      assert.equal(most, 0, `${most} reads of departed clients waited on the lock`);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end().catch(() => undefined);
    }
    // The admin API answers on: a read after the outage is served.
    const res = await adminApi(client, adminUrl).get('/admin/users/r9-gone-a@example.com');
    assert.equal(res.status, 200, res.text);
  });
}
