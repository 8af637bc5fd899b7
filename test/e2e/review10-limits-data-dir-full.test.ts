// What was wrong: with jwt.secret empty, start-up generates the secret in the data directory: a temporary file
// written, then hard-linked into place. On a full disk the temporary file was created and its write failed (ENOSPC):
// start-up stopped with its clear config error, but the empty temporary file stayed behind, one more at every
// start a supervisor retried, each an inode of a disk already full.
// What is right now: the same one-line refusal, and nothing left in the data directory.
// The disk is a 64 KiB tmpfs this test mounts (as root, as CI runs), unmounted in `after`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, writeConfig } from '../helpers/gateway.js';
import { DATABASE_URL } from '../helpers/services.js';

const mountPoint = mkdtempSync(join(tmpdir(), 'portcullis-review10-datadir-'));
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]);
after(() => {
  execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

test('a full data directory: the secret cannot be generated, start refuses in one line and leaves no file behind', async () => {
  // Every block taken: a file can still be created (an inode), not written.
  writeFileSync(join(mountPoint, 'filler'), Buffer.alloc(64 * 1024));
  const config = writeConfig({
    admin: { enabled: false },
    jwt: { secret: '' },
    // The user store elsewhere (SQLite in the full directory refuses first, SQLITE_FULL): the secret is what is written.
    database: { url: DATABASE_URL },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: 9 }] },
    middleware: { auth: { enabled: true } },
  });
  for (let i = 0; i < 2; i++) {
    const run = await runCli(['start', '--config', config], { PORTCULLIS_DATA_DIR: mountPoint, JWT_SECRET: '' }, { boundMs: 20_000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /jwt\.secret: empty, and the generated secret cannot be written in .* \(ENOSPC\)/);
  }
  assert.deepEqual(readdirSync(mountPoint), ['filler'], 'no temporary file left behind');
});
