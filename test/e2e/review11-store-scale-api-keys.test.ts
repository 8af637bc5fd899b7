// A SQLite user store holding many API keys: GET /admin/api-keys and `portcullis api-keys list` answered every key at
// once (0.5 s on the event loop at 50,000 keys). They now page as /admin/users and `users list` do: `limit` 1-100
// (here 100 by default, so a gateway with up to 100 keys answers as before), `cursor` from `next_cursor`, newest first.
// A few hundred keys, written straight into the table, show the paging; the latency is the scale test's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN_TOKEN, adminApi, runPortcullis } from '../helpers/identity.js';
import { seededSqliteStore, startLargeStoreGateway, type Db } from '../helpers/large-sqlite-store.js';

const KEYS = 250;
const REVOKED_EVERY = 10;

/** Keys `%016x` of 1..KEYS, key i created i seconds ago (so newest first is ascending i); every tenth revoked. */
function seedKeys(db: Db, now: number): void {
  db.prepare(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
     INSERT INTO api_keys (id, name, key_hash, created_at, revoked_at)
     SELECT printf('%016x', i), printf('seed-%d', i), printf('%064x', i), :now - i * 1000,
            CASE WHEN i % :every = 0 THEN :now ELSE NULL END FROM s`,
  ).run({ n: KEYS, now, every: REVOKED_EVERY });
}

const live = Array.from({ length: KEYS }, (_, k) => k + 1)
  .filter((i) => i % REVOKED_EVERY !== 0)
  .map((i) => i.toString(16).padStart(16, '0'));

interface KeysPage {
  api_keys: { id: string; name: string }[];
  next_cursor: string | null;
}

test('GET /admin/api-keys and api-keys list page through many keys', { timeout: 60_000 }, async () => {
  const { dataDir } = await seededSqliteStore(seedKeys);
  const stack = await startLargeStoreGateway(dataDir, '1h', { admin: { enabled: true, listen_port: 0, token: ADMIN_TOKEN } });
  try {
    const admin = adminApi(stack.client, `http://127.0.0.1:${stack.gw.adminPort}`);
    // The default page: the first 100, newest first, and a cursor.
    const first = await admin.get('/admin/api-keys');
    assert.equal(first.status, 200, first.text);
    const firstPage = first.json<KeysPage>();
    assert.deepEqual(firstPage.api_keys.map((k) => k.id), live.slice(0, 100));
    assert.equal(typeof firstPage.next_cursor, 'string');
    // Pages of 40 from the start, by cursor: every live key once, in order, then null.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await admin.get(`/admin/api-keys?limit=40${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      assert.equal(res.status, 200, res.text);
      const page = res.json<KeysPage>();
      assert.ok(page.api_keys.length <= 40);
      seen.push(...page.api_keys.map((k) => k.id));
      cursor = page.next_cursor;
    } while (cursor !== null && seen.length <= KEYS);
    assert.deepEqual(seen, live);
    // The users listing's rules for bad values: 400 bad_request naming the parameter.
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=1e1', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      [`cursor=${'x'.repeat(600)}`, 'cursor'],
    ] as const) {
      const res = await admin.get(`/admin/api-keys?${query}`);
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      const body = res.json<{ code: string; details: { field: string }[] }>();
      assert.equal(body.code, 'bad_request', query);
      assert.deepEqual(body.details.map((d) => d.field), [field], query);
    }

    // The CLI on the same file: the same pages, `more:` naming the next one, bad values bad usage.
    const cli = (args: string[]) =>
      runPortcullis([...args, '--config', stack.gw.configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });
    const listed = await cli(['api-keys', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const cliFirst = JSON.parse(listed.stdout) as KeysPage;
    assert.deepEqual(cliFirst.api_keys.map((k) => k.id), live.slice(0, 100));
    const table = await cli(['api-keys', 'list', '--limit', '5']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 7, table.stdout);
    assert.match(lines[0]!, /^ID +NAME +CREATED/);
    assert.ok(lines[1]!.startsWith(live[0]!), table.stdout);
    const more = /^more: --limit 5 --cursor (\S+)$/.exec(lines[6]!);
    assert.ok(more, table.stdout);
    const next = await cli(['api-keys', 'list', '--limit', '5', '--cursor', more[1]!, '--json']);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual((JSON.parse(next.stdout) as KeysPage).api_keys.map((k) => k.id), live.slice(5, 10));
    for (const args of [
      ['api-keys', 'list', '--limit', '0'],
      ['api-keys', 'list', '--cursor', 'not-a-cursor'],
      ['api-keys', 'revoke', live[0]!, '--limit', '5'],
      ['api-keys', 'create', 'svc', '--cursor', more[1]!],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.equal(run.stdout, '', args.join(' '));
    }
  } finally {
    await stack.close();
  }
});
