// `portcullis users delete EMAIL` while Redis is down exits 3 (pending) and says the revocation is retried by running
// the command again. Run again by email, in a new process as every command is, it said "user EMAIL not found" (exit 1)
// while the deleted user's access tokens could still be accepted: the email went with the row, and the admin API's
// fix (it remembers a pending delete by email) lives in one process's memory. The change log now marks such a
// delete with the email's digest until its revocation is written, so the CLI answers as the admin API does.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { redisServerInstalled } from './ratelimit-helpers.js';
import { startCliRedisStack, type CliRedisStack } from '../helpers/cli-redis-stack.js';
import { seedUsers } from '../helpers/seeded-users.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const PASSWORD = 'Correct-horse-battery-1';

/** Runs `body` on a stack (store + Redis) of its own, closed after it. */
async function onOwnStack(tag: string, body: (stack: CliRedisStack) => Promise<void>): Promise<void> {
  const stack = await startCliRedisStack(tag);
  try {
    await body(stack);
  } finally {
    await stack.close();
  }
}

/** `users create EMAIL --json` (exit 0): the new user's id. The users a case starts from are made in this process. */
async function created(stack: CliRedisStack, email: string): Promise<string> {
  const res = await stack.run(['users', 'create', email, '--json'], `${PASSWORD}\n`);
  assert.equal(res.code, 0, res.stderr);
  return (JSON.parse(res.stdout) as { user_id: string }).user_id;
}

// Each command that meets the outage waits 3 s for Redis before it reports pending (src/commands/context.ts), and the
// two cases wait one after another within themselves: each has its own store and Redis, so they run side by side.
describe('users delete EMAIL repeated after a pending delete', { skip: skipNoRedis, concurrency: true }, () => {
  test('is pending again (exit 3) while Redis is down, then "not found" once the revocation is written', () =>
    onOwnStack('r5-cli-delete', async (stack) => {
      const { redis } = stack;
      const [id] = await seedUsers(stack.configFile, stack.dataDir, ['gone@example.com'], PASSWORD);
      await redis.kill();
      const first = await stack.run(['users', 'delete', 'gone@example.com']);
      assert.equal(first.code, 3, first.stderr);
      const again = await stack.run(['users', 'delete', 'Gone@Example.com', '--json']);
      assert.equal(again.code, 3, `still pending, not "not found": ${again.stderr}`);
      assert.deepEqual(JSON.parse(again.stdout), { deleted: true, user_id: id, revocation: 'pending' });
      assert.ok(again.stderr.includes(`run "portcullis users delete ${id}`), again.stderr);

      await redis.start();
      const done = await stack.run(['users', 'delete', 'gone@example.com']);
      assert.equal(done.code, 1, done.stderr);
      assert.match(done.stderr, /user gone@example\.com not found/);
      // Written now: the mark is cleared, and a later repeat is "not found" too.
      assert.equal((await stack.run(['users', 'delete', 'gone@example.com'])).code, 1);
    }));

  test('an email registered again since names the new user', () =>
    onOwnStack('r5-cli-delete-again', async (stack) => {
      const { redis } = stack;
      await seedUsers(stack.configFile, stack.dataDir, ['again@example.com'], PASSWORD);
      await redis.kill();
      assert.equal((await stack.run(['users', 'delete', 'again@example.com'])).code, 3);
      const newId = await created(stack, 'again@example.com');
      const deleted = await stack.run(['users', 'delete', 'again@example.com', '--json']);
      assert.equal(deleted.code, 3, deleted.stderr);
      assert.equal((JSON.parse(deleted.stdout) as { user_id: string }).user_id, newId);
      assert.equal((await stack.run(['users', 'show', newId])).code, 1, 'the new user is deleted');
    }));
});
