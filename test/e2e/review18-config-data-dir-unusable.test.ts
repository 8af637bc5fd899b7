// What was wrong (found by review): with auth on, a PORTCULLIS_DATA_DIR that is a file made start and migrate print
// node's bare error (`Error: EEXIST EEXIST: file already exists, mkdir …`, or ENOTDIR below it) where check-config
// named the setting; and a data dir whose portcullis.db is a symlink to a missing directory passed check-config, then
// start failed with `user store unavailable: ENOENT`, naming no path. check-config, start and migrate now give the
// same one line naming the setting and the directory.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-data-dir-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'c.yaml');
writeFileSync(
  config,
  `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
middleware: {auth: {enabled: true}}
jwt: {secret: "0123456789abcdef0123456789abcdef0123"}
load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 1}], health_check: {enabled: false}}
`,
);
writeFileSync(join(dir, 'afile'), '');
mkdirSync(join(dir, 'dangling'));
symlinkSync(join(dir, 'missing', 'x.db'), join(dir, 'dangling', 'portcullis.db'));
// From the fix's review: a chain of two links, and a directory where the file should be.
mkdirSync(join(dir, 'chain'));
symlinkSync(join(dir, 'link2'), join(dir, 'chain', 'portcullis.db'));
symlinkSync(join(dir, 'missing', 'y.db'), join(dir, 'link2'));
mkdirSync(join(dir, 'dir-db', 'portcullis.db'), { recursive: true });

/** What check-config, start and (`migrate` true) migrate say about `dataDir`: each must fail with one line. */
async function verdicts(dataDir: string, migrate = false): Promise<string[]> {
  const out: string[] = [];
  for (const command of migrate ? ['check-config', 'start', 'migrate'] : ['check-config', 'start']) {
    const run = await runCli([command, '--config', config], { PORTCULLIS_DATA_DIR: dataDir }, { cwd: dir, boundMs: 15_000 });
    assert.equal(run.code, 1, `${command}: ${run.stdout}${run.stderr}`);
    out.push(run.stderr);
  }
  return out;
}

test('a data dir that is a file, or lies under one: one line naming the setting, from check-config, start and migrate', async () => {
  for (const [dataDir, code] of [['afile', 'ENOTDIR'], ['afile/sub', 'ENOTDIR']] as const) {
    const line = `portcullis: config error: PORTCULLIS_DATA_DIR: cannot write the user store in ${join(dir, dataDir)} (${code})\n`;
    for (const stderr of await verdicts(join(dir, dataDir), true)) assert.equal(stderr, line);
  }
});

test("a portcullis.db symlink to a missing directory, directly or through another link: check-config refuses it as start does", async () => {
  for (const dataDir of ['dangling', 'chain']) {
    const line = `portcullis: config error: PORTCULLIS_DATA_DIR: cannot write the user store in ${join(dir, dataDir)} (ENOENT)\n`;
    for (const stderr of await verdicts(join(dir, dataDir))) assert.equal(stderr, line, dataDir);
  }
});

test('a directory named portcullis.db: the same line from all three', async () => {
  const line = `portcullis: config error: PORTCULLIS_DATA_DIR: cannot write the user store in ${join(dir, 'dir-db')} (EISDIR)\n`;
  for (const stderr of await verdicts(join(dir, 'dir-db'))) assert.equal(stderr, line);
});
