// `users list`'s table ends with the options that list the next page: the filter and page size again, since a cursor
// holds neither. Before, it printed `more: --cursor C` alone, and run as printed after `--email ops@` it listed every
// user older than the page, matching or not.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { identityCliStore } from '../helpers/identity.js';
import { seedUsers } from '../helpers/seeded-users.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

describe('users list: the next page as printed', () => {
  const store = identityCliStore();
  const { cli } = store;
  /** The options of the table's `more:` line. */
  const more = (stdout: string): string => {
    const line = stdout.split('\n').find((l) => l.startsWith('more: '));
    assert.ok(line, stdout);
    return line.slice('more: '.length);
  };
  /** Runs `users list <options>` through a shell, as an operator pastes the line. */
  const shellList = async (options: string) => {
    const command = `"${process.execPath}" "${join(ROOT, 'bin/portcullis.js')}" users list ${options} --config "${store.configFile}"`;
    return (await run('/bin/sh', ['-c', command], { cwd: ROOT, env: { ...process.env, PORTCULLIS_DATA_DIR: store.dataDir } })).stdout;
  };
  const emails = (stdout: string) => [...stdout.matchAll(/\S+@\S+/g)].map((m) => m[0]).sort();

  before(async () => {
    // Created one after another, so the matching ones are interleaved in time with the others. In this process (as
    // `users create` creates them): a process per user cost more than the listing under test.
    const emails = ['ops1@example.com', 'dev1@example.com', "o'b1@example.com", 'ops2@example.com', "o'b2@example.com", 'ops3@example.com', "o'b3@example.com", 'dev2@example.com'];
    await seedUsers(store.configFile, store.dataDir, emails, 'a-long-password');
  });

  test('the printed options keep --email and --limit', async () => {
    const first = await cli(['users', 'list', '--email', 'ops', '--limit', '2']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(emails(first.stdout), ['ops2@example.com', 'ops3@example.com']);
    const options = more(first.stdout);
    const second = await shellList(options);
    assert.deepEqual(emails(second), ['ops1@example.com'], `users list ${options}`);
    assert.ok(!second.includes('more: '), second);
    assert.match(options, /^--email ops --limit 2 --cursor \S+$/);
  });

  test('an email a shell would split or read is quoted', async () => {
    const first = await cli(['users', 'list', '--email', "o'b", '--limit', '1']);
    const options = more(first.stdout);
    assert.match(options, /^--email 'o'\\''b' --limit 1 --cursor \S+$/);
    assert.deepEqual(emails(await shellList(options)), ["o'b2@example.com"]);
  });
});
