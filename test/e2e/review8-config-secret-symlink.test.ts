// The data dir's generated JWT secret when it is a symlink, as a Kubernetes Secret or a config-management tool mounts
// one (jwt-secret -> ..data/jwt-secret -> ..2026_12_05/jwt-secret): check-config and start give one verdict. A
// symlink to a regular file holding a usable secret (trailing LF or CRLF, as an older version or an editor wrote it)
// is read through; one too short is refused by both; a symlink whose target is missing (the mount not there yet, a
// ..data link left dangling) is a config error from both, not "ok" from check-config and then, at start, a secret
// written beside it that cannot be linked ("jwt.secret: empty, and FILE cannot be read", no reason given).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH_ONLY_CONFIG as AUTH, checkConfigVerdict, startVerdict as startConfigVerdict } from '../helpers/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review8-secret-symlink-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const checkVerdict = (path: string, env: NodeJS.ProcessEnv): Promise<string> => checkConfigVerdict(path, env, dir);
const startVerdict = (path: string, env: NodeJS.ProcessEnv): Promise<string> => startConfigVerdict(path, env, dir);

/** A data dir whose jwt-secret is laid out as a Kubernetes Secret volume: two symlinks to a dated directory. */
function mountedDataDir(secret: string | undefined): string {
  const dataDir = mkdtempSync(join(dir, 'data-'));
  mkdirSync(join(dataDir, '..2026_12_05_12_00_00.1'));
  symlinkSync('..2026_12_05_12_00_00.1', join(dataDir, '..data'));
  symlinkSync('..data/jwt-secret', join(dataDir, 'jwt-secret'));
  if (secret !== undefined) {
    const target = join(dataDir, '..2026_12_05_12_00_00.1', 'jwt-secret');
    writeFileSync(target, secret);
    chmodSync(target, 0o600);
  }
  return dataDir;
}

test('a jwt-secret symlink (a mounted secret): check-config and start read it through, or refuse it, alike', async () => {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, AUTH);
  const cases: Array<[string, string | undefined, (file: string) => string]> = [
    ['a usable secret, LF', `${'s'.repeat(40)}\n`, () => 'ok'],
    ['a usable secret, CRLF', `${'s'.repeat(40)}\r\n`, () => 'ok'],
    ['a secret too short', 'short\r\n', (f) => `jwt.secret: empty, and ${f} holds fewer than 32 bytes`],
    ['a symlink to nothing', undefined, (f) => `jwt.secret: empty, and ${f} cannot be read (ENOENT: a symlink to nothing)`],
  ];
  for (const [what, secret, reason] of cases) {
    const dataDir = mountedDataDir(secret);
    const env = { PORTCULLIS_DATA_DIR: dataDir };
    const expected = reason(join(dataDir, 'jwt-secret'));
    const verdict = expected === 'ok' ? 'ok' : `portcullis: config error: ${expected}`;
    assert.equal(await checkVerdict(path, env), verdict, `check-config, ${what}`);
    assert.equal(await startVerdict(path, env), verdict, `start, ${what}`);
  }
});
