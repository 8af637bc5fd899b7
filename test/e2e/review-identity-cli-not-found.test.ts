// A user or API key that does not exist is named in the CLI's refusal: `portcullis: user <id|email> not found`,
// `portcullis: api key <id> not found`, one line on stderr, exit 1 as before; with --json stdout stays empty (nothing
// but JSON is ever printed there). Before, each printed a bare `portcullis: Not Found`, which did not say what was
// missing (the user? the config's store?). The target is printed as typed, its control characters escaped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { identityCliStore } from '../helpers/identity.js';

const UNKNOWN_USER = '0b7e2c1a-5d4f-4e3b-9a8c-7f6e5d4c3b2a';
const UNKNOWN_KEY = '0123456789abcdef';

describe('the CLI names what was not found', () => {
  const { cli } = identityCliStore();

  test('users show|disable|enable|logout|delete|set-password of an unknown id or email: one line naming it, exit 1', async () => {
    for (const verb of ['show', 'disable', 'enable', 'logout', 'delete', 'set-password']) {
      // By email too where it matters most: show (the usual look-up) and delete.
      for (const target of verb === 'show' || verb === 'delete' ? [UNKNOWN_USER, 'nobody@example.com'] : [UNKNOWN_USER]) {
        const res = await cli(['users', verb, target], verb === 'set-password' ? 'a-long-password\n' : undefined);
        assert.equal(res.code, 1, `${verb} ${target}: ${res.stderr}`);
        assert.equal(res.stderr, `portcullis: user ${target} not found\n`, `${verb} ${target}`);
        assert.equal(res.stdout, '');
      }
    }
  });

  test('api-keys revoke of an unknown id (or no id of ours): one line naming it, exit 1', async () => {
    for (const id of [UNKNOWN_KEY, 'not-a-key-id']) {
      const res = await cli(['api-keys', 'revoke', id]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stderr, `portcullis: api key ${id} not found\n`);
      assert.equal(res.stdout, '');
    }
  });

  test('--json: stdout stays empty (machine-readable), the line is on stderr, exit 1', async () => {
    for (const args of [
      ['users', 'delete', UNKNOWN_USER, '--json'],
      ['users', 'show', UNKNOWN_USER, '--json'],
      ['api-keys', 'revoke', UNKNOWN_KEY, '--json'],
    ]) {
      const res = await cli(args);
      assert.equal(res.code, 1, args.join(' '));
      assert.equal(res.stdout, '', args.join(' '));
      assert.match(res.stderr, /^portcullis: (user|api key) \S+ not found\n$/, args.join(' '));
    }
  });

  test('a target with control characters is printed escaped, never raw to the terminal', async () => {
    const res = await cli(['users', 'show', '\u001b[31mred\u009b']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'portcullis: user \\x1b[31mred\\x9b not found\n');
    const long = await cli(['api-keys', 'revoke', 'k'.repeat(500)]);
    assert.equal(long.stderr, `portcullis: api key ${'k'.repeat(80)}… not found\n`);
  });

  // review16: the whole key pasted where its id was asked for was printed back to stderr, secret and all (80 of its
  // 87 characters), and not revoked.
  test('api-keys revoke given the key itself: that key is revoked, and its secret is never printed', async () => {
    const key = await cli(['api-keys', 'create', 'pasted', '--json']);
    const { id, key: secret } = JSON.parse(key.stdout) as { id: string; key: string };
    const listed = async (): Promise<string[]> =>
      (JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as { api_keys: Array<{ id: string }> }).api_keys.map((k) => k.id);
    assert.ok((await listed()).includes(id));
    const revoked = await cli(['api-keys', 'revoke', secret]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.ok(!(revoked.stdout + revoked.stderr).includes(secret.slice(20)));
    assert.ok(!(await listed()).includes(id), 'the key given is revoked (no longer listed)');
    const unknown = `pk_${UNKNOWN_KEY}_${'ab'.repeat(32)}`;
    for (const args of [['api-keys', 'revoke', unknown], ['api-keys', 'revoke', `x${secret}`]]) {
      const res = await cli(args);
      assert.equal(res.code, 1, args.join(' '));
      assert.ok(!res.stderr.includes('ab'.repeat(32)) && !res.stderr.includes(secret.slice(20)), `a secret printed: ${res.stderr}`);
      assert.match(res.stderr, /^portcullis: api key \S+.* not found\n$/);
    }
  });

  // From the fix's review: bad usage and config errors quoted the key too.
  test('no message of any command prints a key\'s secret back', async () => {
    const secret = 'cd'.repeat(32);
    const key = `pk_${UNKNOWN_KEY}_${secret}`;
    for (const args of [['api-keys', key], ['api-keys', 'list', key], [key], ['api-keys', 'revoke', `--${key}`]]) {
      const res = await cli(args);
      assert.notEqual(res.code, 0, args.join(' '));
      assert.ok(!(res.stdout + res.stderr).includes(secret), `${args.join(' ')}: ${res.stderr.split('\n')[0]}`);
    }
  });

  test('a user or key that exists is still acted on', async () => {
    const created = await cli(['users', 'create', 'here@example.com', '--json'], 'a-long-password\n');
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await cli(['users', 'show', 'here@example.com'])).code, 0);
    const key = await cli(['api-keys', 'create', 'svc', '--json']);
    const id = (JSON.parse(key.stdout) as { id: string }).id;
    assert.equal((await cli(['api-keys', 'revoke', id])).code, 0);
  });
});
