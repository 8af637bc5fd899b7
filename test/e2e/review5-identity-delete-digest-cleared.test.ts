// A delete by email left pending (Redis down) marks its change-log row with the email's SHA-256 so that the delete can
// be repeated by email from anywhere; README promises the mark is cleared once the revocation is written. The
// pending notice tells the operator to repeat it by user_id, and that repeat wrote the revocation but left the
// digest in the change log until the janitor's pass after the access-token lifetime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IN_CI } from '../helpers/http.js';
import { redisServerInstalled, type ThrowawayRedis } from './ratelimit-helpers.js';
import { startCliRedisStack, type CliRedisStack } from '../helpers/cli-redis-stack.js';
import { SQLITE_FILE_NAME } from '../../src/store/sqlite.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const PASSWORD = 'Correct-horse-battery-1';

describe('the email digest of a pending delete', { skip: skipNoRedis }, () => {
  let stack: CliRedisStack;
  let redis: ThrowawayRedis;
  let dataDir: string;
  const run = (args: string[], stdin?: string) => stack.run(args, stdin);
  /** How many change-log rows carry an email digest, read from the database file itself. */
  const markedRows = (): number => {
    const db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM identity_changes WHERE email_digest IS NOT NULL').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  before(async () => {
    stack = await startCliRedisStack('r5-digest');
    ({ redis, dataDir } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  test('is cleared when the delete is repeated by the user_id the notice names and its revocation is written', async () => {
    assert.equal((await run(['users', 'create', 'byid@example.com'], `${PASSWORD}\n`)).code, 0);
    await redis.kill();
    let id: string;
    try {
      const first = await run(['users', 'delete', 'byid@example.com', '--json']);
      assert.equal(first.code, 3, first.stderr);
      id = (JSON.parse(first.stdout) as { user_id: string }).user_id;
      assert.ok(first.stderr.includes(`portcullis users delete ${id}`), first.stderr);
      assert.equal(markedRows(), 1, 'the pending delete is marked');
    } finally {
      await redis.start();
    }
    const retried = await run(['users', 'delete', id]);
    assert.equal(retried.code, 1, retried.stderr);
    assert.equal(markedRows(), 0, 'no email digest is kept once the revocation is written');
  });
});
