// What was wrong (found by review): `users` and `api-keys` read the config before their arguments, so in a directory
// without config/proxy.yaml bad usage (`users frob`, `users list --limit 0`, `api-keys create` with no name) exited 1
// with "cannot read config file", where every other command says what is wrong with the command line and exits 2.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const empty = mkdtempSync(join(tmpdir(), 'portcullis-no-config-'));
after(() => rmSync(empty, { recursive: true, force: true }));

test('bad usage of users and api-keys is exit 2 with its reason, with no config to read', async () => {
  for (const [args, reason] of [
    [['users', 'frob'], /unknown users command "frob"/],
    [['users'], /unknown users command ""/],
    [['users', 'list', '--limit', '0'], /--limit must be an integer from 1 to/],
    [['users', 'delete'], /users delete takes one EMAIL or ID/],
    [['api-keys', 'create'], /api-keys create takes one argument/],
    [['api-keys', 'revoke', 'x', '--expires-in', '1d'], /api-keys revoke takes no --expires-in option/],
  ] as const) {
    const run = await runCli(args, { PORTCULLIS_CONFIG: undefined, PORTCULLIS_DATA_DIR: join(empty, 'data') }, { cwd: empty, boundMs: 15_000 });
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, reason, args.join(' '));
    assert.doesNotMatch(run.stderr, /cannot read config file/, args.join(' '));
  }
  // Good usage still needs the config, and says so.
  const run = await runCli(['users', 'list'], { PORTCULLIS_CONFIG: undefined }, { cwd: empty, boundMs: 15_000 });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /cannot read config file/);
});
