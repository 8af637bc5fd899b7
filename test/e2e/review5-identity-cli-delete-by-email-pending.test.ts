// `portcullis users delete EMAIL` while Redis is down exits 3 (pending) and says the revocation is retried by running
// the command again. Run again by email, in a new process as every command is, it said "user EMAIL not found" (exit 1)
// while the deleted user's access tokens could still be accepted: the email went with the row, and the admin API's
// fix (it remembers a pending delete by email) lives in one process's memory. The change log now marks such a
// delete with the email's digest until its revocation is written, so the CLI answers as the admin API does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { redisServerInstalled, type ThrowawayRedis } from './ratelimit-helpers.js';
import { startCliRedisStack, type CliRedisStack } from '../helpers/cli-redis-stack.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const PASSWORD = 'Correct-horse-battery-1';

describe('users delete EMAIL repeated after a pending delete', { skip: skipNoRedis }, () => {
  let stack: CliRedisStack;
  let redis: ThrowawayRedis;
  const run = (args: string[], stdin?: string) => stack.run(args, stdin);
  const userId = async (email: string): Promise<string> => {
    const shown = await run(['users', 'show', email, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    return (JSON.parse(shown.stdout) as { user_id: string }).user_id;
  };

  before(async () => {
    stack = await startCliRedisStack('r5-cli-delete');
    ({ redis } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  test('is pending again (exit 3) while Redis is down, then "not found" once the revocation is written', async () => {
    assert.equal((await run(['users', 'create', 'gone@example.com'], `${PASSWORD}\n`)).code, 0);
    const id = await userId('gone@example.com');
    await redis.kill();
    const first = await run(['users', 'delete', 'gone@example.com']);
    assert.equal(first.code, 3, first.stderr);
    const again = await run(['users', 'delete', 'Gone@Example.com', '--json']);
    assert.equal(again.code, 3, `still pending, not "not found": ${again.stderr}`);
    assert.deepEqual(JSON.parse(again.stdout), { deleted: true, user_id: id, revocation: 'pending' });
    assert.ok(again.stderr.includes(`run "portcullis users delete ${id}`), again.stderr);

    await redis.start();
    const done = await run(['users', 'delete', 'gone@example.com']);
    assert.equal(done.code, 1, done.stderr);
    assert.match(done.stderr, /user gone@example\.com not found/);
    // Written now: the mark is cleared, and a later repeat is "not found" too.
    assert.equal((await run(['users', 'delete', 'gone@example.com'])).code, 1);
  });

  test('an email registered again since names the new user', async () => {
    assert.equal((await run(['users', 'create', 'again@example.com'], `${PASSWORD}\n`)).code, 0);
    await redis.kill();
    try {
      assert.equal((await run(['users', 'delete', 'again@example.com'])).code, 3);
      assert.equal((await run(['users', 'create', 'again@example.com'], `${PASSWORD}\n`)).code, 0);
      const newId = await userId('again@example.com');
      const deleted = await run(['users', 'delete', 'again@example.com', '--json']);
      assert.equal(deleted.code, 3, deleted.stderr);
      assert.equal((JSON.parse(deleted.stdout) as { user_id: string }).user_id, newId);
      assert.equal((await run(['users', 'show', newId])).code, 1, 'the new user is deleted');
    } finally {
      await redis.start();
    }
  });
});
