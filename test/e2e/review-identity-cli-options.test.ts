// `portcullis users` and `portcullis api-keys` refuse an option they do not read (exit 2, nothing done), as they
// refuse `users list alice@`. Before, such an option was dropped without a word: `api-keys list --email ops@` printed
// every key, `users delete X --email Y` deleted X, `api-keys revoke ID --expires-in 1d` revoked the key, all exit 0.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { identityCliStore } from '../helpers/identity.js';

describe('identity commands and options that are not theirs', () => {
  const { cli } = identityCliStore();

  test('a foreign option is bad usage (exit 2) naming it, and the action is not done', async () => {
    const created = await cli(['users', 'create', 'keep@example.com', '--json'], 'a-long-password\n');
    assert.equal(created.code, 0, created.stderr);
    const key = await cli(['api-keys', 'create', 'svc', '--json']);
    assert.equal(key.code, 0, key.stderr);
    const keyId = (JSON.parse(key.stdout) as { id: string }).id;

    const refused: [string[], string][] = [
      [['api-keys', 'list', '--email', 'ops@'], 'api-keys takes no --email option'],
      [['api-keys', 'revoke', keyId, '--limit', '1'], 'api-keys revoke takes no --limit option'],
      [['users', 'list', '--expires-in', '7d'], 'users takes no --expires-in option'],
      [['users', 'list', '--match', 'GET http://x/'], 'users takes no --match option'],
      [['users', 'delete', 'keep@example.com', '--email', 'other@example.com'], 'users delete takes no --email option'],
      [['users', 'disable', 'keep@example.com', '--limit', '5'], 'users disable takes no --limit option'],
      [['api-keys', 'revoke', keyId, '--expires-in', '1d'], 'api-keys revoke takes no --expires-in option'],
    ];
    for (const [args, message] of refused) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.ok(run.stderr.startsWith(`portcullis: ${message}\n`), `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '', args.join(' '));
      assert.ok(!run.stderr.includes('admin_action'), `${args.join(' ')} did something: ${run.stderr}`);
    }

    // Nothing was done: the user is there and enabled, the key is not revoked.
    const shown = await cli(['users', 'show', 'keep@example.com', '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { disabled: boolean }).disabled, false);
    const keys = JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as { api_keys: { id: string }[] };
    assert.deepEqual(keys.api_keys.map((k) => k.id), [keyId]);
  });

  // review16: the CLI took what GET /admin/users?email= answers 400 for, and printed an empty table (exit 0).
  test('users list --email is held to the admin API\'s rule: bad usage, exit 2', async () => {
    for (const [email, message] of [
      ['a\u0001b', '--email must not contain control characters'],
      ['a'.repeat(255), '--email must be at most 254 characters'],
    ] as const) {
      const run = await cli(['users', 'list', '--email', email]);
      assert.equal(run.code, 2, run.stderr);
      assert.ok(run.stderr.startsWith(`portcullis: ${message}\n`), run.stderr);
      assert.equal(run.stdout, '');
    }
  });

  test('each command still takes its own options', async () => {
    const listed = await cli(['users', 'list', '--email', 'keep@', '--limit', '5', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as { users: unknown[] }).users.length, 1);
    const key = await cli(['api-keys', 'create', 'short-lived', '--expires-in', '1d', '--json']);
    assert.equal(key.code, 0, key.stderr);
  });

  // stop 54: parseArgs kept the last of a repeated option, so `--config a --config b` ran on b and
  // `users list --email a --email b` listed b's users, without a word.
  test('an option taking a value, given twice in any spelling, is bad usage (exit 2) and nothing runs', async () => {
    for (const [args, name] of [
      [['users', 'list', '--email', 'keep@', '--email', 'other@'], 'email'],
      [['users', 'list', '--limit', '1', '--limit=2'], 'limit'],
      [['check-config', '-c', 'elsewhere.yaml'], 'config'],
      [['api-keys', 'create', 'svc2', '--expires-in', '1d', '--expires-in', '2d'], 'expires-in'],
    ] as const) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.ok(run.stderr.startsWith(`portcullis: --${name} is given more than once\n`), `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
    }
    const keys = JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as { api_keys: { name: string }[] };
    assert.ok(!keys.api_keys.some((k) => k.name === 'svc2'), 'the key was created');
    // -H may repeat (routes --match takes several headers), and a flag given twice is harmless.
    const listed = await cli(['users', 'list', '--json', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
  });
});
