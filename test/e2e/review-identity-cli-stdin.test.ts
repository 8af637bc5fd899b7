// A password on stdin is read up to a bound: input with no newline that never ends (`< /dev/zero`, `yes | tr -d
// '\n'`) is refused once 64 KB are read (exit 1, the password rule's message, nothing created), where before it was
// read into memory until the process was killed (gigabytes within seconds, no answer).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** Long enough for a process started through tsx to read 64 KB; far shorter than filling memory takes. */
const ANSWER_WITHIN_MS = 20_000;

describe('a password on stdin that never ends', () => {
  const dataDir = tempDataDir();
  let configFile: string;
  const env = () => ({ ...process.env, PORTCULLIS_DATA_DIR: dataDir });

  before(async () => {
    configFile = writeConfig({
      load_balancing: { upstreams: upstreams([1]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    });
    const migrated = await runPortcullis(['migrate', '--config', configFile], { env: env() });
    assert.equal(migrated.code, 0, migrated.stderr);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('users create is refused (exit 1) after a bounded read, and creates nothing', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'users', 'create', 'endless@example.com', '--config', configFile], {
      cwd: ROOT,
      env: env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // EPIPE once the command stops reading
    // Zero bytes for as long as the command reads them: no newline, and no end of input.
    const block = Buffer.alloc(16 * 1024);
    const feed = () => {
      while (!child.stdin.destroyed && child.stdin.write(block));
    };
    child.stdin.on('drain', feed);
    feed();
    const killer = setTimeout(() => child.kill('SIGKILL'), ANSWER_WITHIN_MS);
    const { code } = await childExit(child);
    clearTimeout(killer);
    child.stdin.destroy();
    assert.equal(code, 1, `no answer within ${ANSWER_WITHIN_MS} ms (killed), stderr: ${stderr.slice(0, 500)}`);
    assert.ok(stderr.includes('password: must be at most 128 characters'), stderr);
    assert.ok(!stderr.includes('admin_action'), stderr);

    const shown = await runPortcullis(['users', 'show', 'endless@example.com', '--config', configFile], { env: env() });
    assert.equal(shown.code, 1, shown.stderr);
  });

  test('a password line of ordinary length is still read', async () => {
    const created = await runPortcullis(['users', 'create', 'ok@example.com', '--json', '--config', configFile], {
      stdin: 'a-long-password\n',
      env: env(),
    });
    assert.equal(created.code, 0, created.stderr);
  });
});
