// The data dir's JWT secret file mounted by someone else, as a Kubernetes Secret volume mounts it: owned by root,
// mode 0644 (the volume's default) or 0640 (group-readable for an fsGroup), reached through ..data symlinks, read by a
// gateway running as another user. start-up resets a loosened secret file's mode to 0600; on a file it does not own
// that chmod failed (EPERM; EROFS on the read-only volume) and start stopped with 'portcullis: Error: EPERM ...', no
// config error, while check-config said ok. Now start serves with the secret and warns that its mode cannot be reset;
// check-config and start agree. The gateway runs as root without CAP_FOWNER (setpriv --bounding-set=-fowner; this test
// runs as root) on a secret file another user owns: its chmod fails with EPERM as it does for a non-root gateway, while
// it still reads the checkout wherever CI cloned it (a gateway run as another uid could not reach a clone under a 0700
// directory).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH_ONLY_CONFIG as AUTH } from '../helpers/config-error.js';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const NOBODY = 65534;
/** setpriv's arguments: root as it runs, but without the capability that lets it chmod a file it does not own. */
const NOT_OWNER = ['--bounding-set=-fowner'];
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review8-secret-owner-'));
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

/** check-config run without CAP_FOWNER: 'ok' or its stderr; bounded. */
function checkVerdict(path: string, dataDir: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'setpriv',
      [...NOT_OWNER, process.execPath, join(ROOT, 'bin/portcullis.js'), 'check-config', '--config', path],
      { cwd: dir, env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir }, timeout: 15_000 },
      (err, _stdout, stderr) => resolve(err === null ? 'ok' : stderr.trim() || String(err)),
    );
  });
}

/** start run without CAP_FOWNER: 'ok' and its log once it serves (then stopped), or its stderr line. */
async function startVerdict(path: string, dataDir: string): Promise<{ verdict: string; logs: ReadonlyArray<Record<string, unknown>> }> {
  let gw: GatewayProcess;
  try {
    gw = await startProcess('setpriv', [...NOT_OWNER, process.execPath, join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, {
      cwd: dir,
      dataDir,
      timeoutMs: 12_000,
    });
  } catch (err) {
    return { verdict: (err as Error).message.trim(), logs: [] };
  }
  try {
    return { verdict: 'ok', logs: [...gw.logs] };
  } finally {
    await gw.cleanup();
  }
}

/** A data dir nobody owns, with a jwt-secret nobody owns (mode `mode`), directly or via ..data links. */
function dataDirWith(mode: number, mounted: boolean): string {
  const dataDir = mkdtempSync(join(dir, 'data-'));
  chownSync(dataDir, NOBODY, NOBODY);
  const holder = mounted ? join(dataDir, '..2026_12_05_12_00_00.1') : dataDir;
  if (mounted) {
    mkdirSync(holder);
    symlinkSync('..2026_12_05_12_00_00.1', join(dataDir, '..data'));
    symlinkSync('..data/jwt-secret', join(dataDir, 'jwt-secret'));
  }
  const file = join(holder, 'jwt-secret');
  writeFileSync(file, `${'k'.repeat(48)}\n`);
  chownSync(file, NOBODY, NOBODY);
  chmodSync(file, mode);
  return dataDir;
}

test("a JWT secret file the gateway's user does not own, readable by others: check-config and start both accept it, start warns", async () => {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, AUTH);
  chmodSync(path, 0o644);
  for (const [mode, mounted] of [
    [0o644, true],
    [0o640, true],
    [0o644, false],
  ] as const) {
    const what = `mode ${mode.toString(8)}${mounted ? ' through ..data symlinks' : ''}`;
    const dataDir = dataDirWith(mode, mounted);
    assert.equal(await checkVerdict(path, dataDir), 'ok', `check-config, ${what}`);
    const { verdict, logs } = await startVerdict(path, dataDir);
    assert.equal(verdict, 'ok', `start, ${what}`);
    const warning = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('the JWT secret file is readable by others'));
    assert.ok(warning !== undefined, `start warns, ${what}: ${JSON.stringify(logs.map((l) => l.msg))}`);
    assert.equal(warning.code, 'EPERM', what);
    assert.ok(!JSON.stringify(logs).includes('k'.repeat(48)), `the secret is not logged, ${what}`);
  }
});
