// A delete by email left pending (Redis down) marks its change-log row with the email's SHA-256 so that it can be
// repeated by email from anywhere; README promises the mark is cleared once the revocation is written. With nobody
// repeating the delete, the running gateway's change poller writes the revocation within a second of Redis coming
// back ("Revocations Applied"), and it left the digest in the change log until the janitor's pass after the
// access-token lifetime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startAuthStack, register, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { waitFor } from '../helpers/prometheus.js';
import { IN_CI } from '../helpers/http.js';
import { freePort, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';
import { SQLITE_FILE_NAME } from '../../src/store/sqlite.js';
import { EVENTS } from '../../src/observability/events.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

describe('the email digest of a pending delete, with no repeat', { skip: skipNoRedis }, () => {
  let redis: ThrowawayRedis;
  let stack: AuthStack;
  let admin: ReturnType<typeof adminApi>;
  /** How many change-log rows carry an email digest, read from the gateway's database file itself. */
  const markedRows = (): number => {
    const db = new Database(join(stack.gw.dataDir, SQLITE_FILE_NAME), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM identity_changes WHERE email_digest IS NOT NULL').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const logged = (msg: string, has?: string): boolean => stack.gw.logs.some((l) => l['msg'] === msg && (has === undefined || has in l));

  before(async () => {
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    stack = await startAuthStack({
      admin: { token: ADMIN_TOKEN },
      redis: { url: redis.url, key_prefix: `portcullis-test:r5-digest-poller:${runId()}:` },
    });
    admin = adminApi(stack.client, stack.gw.adminUrl!);
    await waitFor('the gateway to reach redis', async () => (await admin.get('/ready')).status === 200, 10_000);
  });
  after(async () => {
    await stack?.close();
    await redis?.kill();
  });

  test("is cleared once the change poller writes the revocation on Redis's return", async () => {
    const user = await register(stack);
    await redis.kill();
    try {
      const deleted = await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`);
      assert.equal(deleted.status, 202, deleted.text);
      assert.equal(markedRows(), 1, 'the pending delete is marked');
      // The poller has read the delete and failed to write it too (its warning carries how many wait): it is the one
      // that writes it once Redis is back.
      await waitFor('the change poller to queue the revocation', () => logged(EVENTS.revocationPending, 'pending'), 15_000);
    } finally {
      await redis.start();
    }
    await waitFor('the change poller to write the pending revocation', () => logged(EVENTS.revocationsApplied), 15_000);
    assert.equal(markedRows(), 0, 'no email digest is kept once the revocation is written');
    // The revocation is in place: the delete repeated by email says the user is gone.
    assert.equal((await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`)).status, 404);
  });
});
