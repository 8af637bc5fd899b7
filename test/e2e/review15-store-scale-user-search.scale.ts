// A SQLite user store holding 1,000,000 users: GET /admin/users?email=<prefix> walked every user on the event loop
// when the prefix matched few or none (200 ms a search at that size: SQLite took the creation index for the order and
// filtered it all), and a deep page read every newer user first. A search now reads the email index, or, for a prefix
// matching thousands, a page of the creation index; a page after a cursor seeks to it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { seededSqliteStore, startLargeStoreGateway, type Db } from '../helpers/large-sqlite-store.js';

const USERS = 1_000_000;

function seedUsers(db: Db, now: number): void {
  db.prepare(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
     INSERT INTO users (id, email, password_hash, created_at) SELECT printf('%032x', i), printf('seed-%d@example.com', i), 'x', :now - i * 1000 FROM s`,
  ).run({ n: USERS, now });
}

test('searching and paging 1,000,000 users does not hold proxied requests', { timeout: 300_000 }, async (t) => {
  const { dataDir } = await seededSqliteStore(seedUsers);
  const stack = await startLargeStoreGateway(dataDir, '1h', { admin: { enabled: true, listen_port: 0, token: ADMIN_TOKEN } });
  try {
    const admin = adminApi(stack.client, `http://127.0.0.1:${stack.gw.adminPort}`);
    // Searches that match nothing, a few, and thousands; and the pages after each, for 10 s.
    const searches = ['nobody', 'seed-99999', 'seed-1', 'seed-'];
    let listing = true;
    let listings = 0;
    const found = new Map<string, number>();
    const lister = (async () => {
      while (listing) {
        const email = searches[listings % searches.length]!;
        let cursor: string | null = null;
        for (let page = 0; page < 3; page++) {
          const query: string = `email=${email}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
          const res = await admin.get(`/admin/users?${query}`);
          assert.equal(res.status, 200, res.text);
          const body = res.json<{ users: Array<{ email: string }>; next_cursor?: string | null }>();
          for (const user of body.users) assert.ok(user.email.startsWith(email), user.email);
          found.set(email, (found.get(email) ?? 0) + body.users.length);
          cursor = body.next_cursor ?? null;
          if (cursor === null) break;
        }
        listings++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const until = Date.now() + 10_000;
    const { slowest, served } = await stack.slowestWhile(() => Date.now() < until);
    listing = false;
    await lister;
    t.diagnostic(`slowest of ${served} proxied requests over ${listings} searches: ${Math.round(slowest)} ms`);
    assert.equal(found.get('nobody') ?? 0, 0);
    assert.ok((found.get('seed-99999') ?? 0) > 0 && (found.get('seed-') ?? 0) > 0, 'the searches found their users');
    assert.ok(slowest < 250, `the slowest of ${served} proxied requests took ${Math.round(slowest)} ms while users were searched`);
  } finally {
    await stack.close();
  }
});
