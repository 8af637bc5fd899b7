// A large SQLite user store under a running gateway: the session janitor's run over hundreds of thousands of expired
// refresh tokens. better-sqlite3 runs every statement on the event loop, so one DELETE of them all held every proxied
// request of the process for as long as it took (seconds).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { FAST_ARGON2, TEST_SECRET, bearer, register } from '../helpers/auth-gateway.js';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, tempDataDir, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';
import { openSqliteUserStore, SQLITE_FILE_NAME } from '../../src/store/sqlite.js';

type Db = import('better-sqlite3').Database;
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');

const EXPIRED = 500_000;
const USERS = 20_000;

/** Users and their expired sessions, written straight into the migrated store the way logins leave them. */
function seedExpiredSessions(db: Db, now: number): void {
  db.transaction(() => {
    db.prepare(
      `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
       INSERT INTO users (id, email, password_hash, created_at)
       SELECT printf('00000000-0000-4000-8000-%012d', i), printf('seed-%d@example.com', i), 'x', :now - 86400000 - i FROM s`,
    ).run({ n: USERS, now });
    // One family per login, expired between a second and a few days ago; a tenth revoked by a logout first.
    db.prepare(
      `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
       INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at, revoked_at)
       SELECT printf('10000000-0000-4000-8000-%012d', i), printf('00000000-0000-4000-8000-%012d', 1 + i % :users),
              printf('20000000-0000-4000-8000-%012d', i), printf('%064x', i), :now - 1000 - i * 1000,
              :now - 2592000000 - i * 1000, CASE WHEN i % 10 = 0 THEN :now - 1000 - i * 1000 ELSE NULL END
       FROM s`,
    ).run({ n: EXPIRED, users: USERS, now });
  })();
}

function countTokens(db: Db, expired: boolean): number {
  const sql = `SELECT COUNT(*) AS n FROM refresh_tokens WHERE expires_at ${expired ? '<' : '>='} ?`;
  return (db.prepare(sql).get(Date.now()) as { n: number }).n;
}

test('the janitor removes 500,000 expired sessions without holding proxied requests for seconds', { timeout: 90_000 }, async (t) => {
  const dataDir = tempDataDir();
  const store = openSqliteUserStore({ dataDir });
  await store.migrate();
  await store.close();
  const file = join(dataDir, SQLITE_FILE_NAME);
  const seeding = new Database(file);
  seedExpiredSessions(seeding, Date.now());
  seeding.close();

  const backend = await startBackend('echo');
  const client = createClient();
  const gw = await spawnGateway(
    {
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: {
        auth: { enabled: true, argon2: FAST_ARGON2, session_cleanup_interval: '3s' },
        rate_limit: { auth: { enabled: false } },
      },
      admin: { enabled: false },
    },
    { dataDir },
  );
  const reader = new Database(file, { readonly: true });
  try {
    const session = await register({ client, url: gw.url });
    // Ordinary authenticated requests, one after another, from before the janitor's first run until it is done.
    let slowest = 0;
    let served = 0;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      const started = performance.now();
      const res = await client.request(`${gw.url}/api/orders`, { headers: bearer(session.access_token) });
      slowest = Math.max(slowest, performance.now() - started);
      assert.equal(res.status, 200, res.text);
      served++;
      if (countTokens(reader, true) === 0) break;
      await sleep(10);
    }
    t.diagnostic(`slowest of ${served} proxied requests while the janitor ran: ${Math.round(slowest)} ms`);
    assert.equal(countTokens(reader, true), 0, 'every expired session was removed');
    assert.equal(countTokens(reader, false), 1, "the registered user's live session is kept");
    // Before: one DELETE of every expired row held the event loop, 3.4 s for these rows on a 2-core machine; after,
    // 0.2-0.3 s at the slowest (a step and its WAL checkpoint), 0.7 s once on a machine shared with other test runs.
    assert.ok(slowest < 1500, `the slowest of ${served} proxied requests took ${Math.round(slowest)} ms while the janitor ran`);
  } finally {
    reader.close();
    await client.close();
    await gw.cleanup();
    await backend.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
