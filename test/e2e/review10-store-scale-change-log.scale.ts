// A large SQLite user store under a running gateway: the session janitor's prune of a long identity change log (a
// bulk import of users through the CLI leaves a create_user row each, kept a week). After deleting old rows, the
// prune clears the email digests of old pending deletes; SQLite's planner took the at index for that UPDATE, so it
// read every row older than the token lifetime, on the event loop, at each run (and each step of a batched run).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededSqliteStore, startLargeStoreGateway, type Db } from '../helpers/large-sqlite-store.js';
import { waitFor } from '../helpers/wait.js';

const CHANGES = 1_500_000;

/** A week's bulk import through the CLI: one create_user row per user, a day old (kept: younger than a week). */
function seedChangeLog(db: Db, now: number): void {
  db.prepare(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
     INSERT INTO identity_changes (at, actor, action, target_id)
     SELECT :now - 86400000 - i, 'cli', 'create_user', printf('00000000-0000-4000-8000-%012d', i) FROM s`,
  ).run({ n: CHANGES, now });
}

test('the janitor over a change log of 1,500,000 kept rows does not hold proxied requests', { timeout: 90_000 }, async (t) => {
  const { dataDir } = await seededSqliteStore(seedChangeLog);
  // The janitor's 'expired sessions removed' line is at debug.
  const stack = await startLargeStoreGateway(dataDir, '2s', { logging: { level: 'debug' } });
  try {
    const runs = (): number => stack.gw.logs.filter((l) => l.msg === 'expired sessions removed').length;
    // Three janitor runs, ordinary authenticated requests throughout.
    const deadline = Date.now() + 30_000;
    const { slowest, served } = await stack.slowestWhile(() => runs() < 3 && Date.now() < deadline);
    await waitFor(() => runs() >= 3, 'three janitor runs', 1000);
    t.diagnostic(`slowest of ${served} proxied requests over three janitor runs: ${Math.round(slowest)} ms`);
    // Before: each run held the event loop about 4 s (3958 ms); after, 0.2-0.4 s at the slowest on a shared 2-core machine.
    assert.ok(slowest < 1500, `the slowest of ${served} proxied requests took ${Math.round(slowest)} ms while the janitor ran`);
  } finally {
    await stack.close();
  }
});
