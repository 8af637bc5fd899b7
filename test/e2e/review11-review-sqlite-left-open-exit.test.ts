// An embedded gateway (src/embedding) whose SQLite store was left open at its close (its -wal and -shm no longer its
// own: src/store/sqlite-left-open.ts) ends its host process from the 'exit' event with process.exit(). That call
// never returns: it took the host's exit from it. The code was the one the event began with, so a host 'exit'
// listener's process.exitCode (set as the process exits) was overwritten; and a listener the host added after the
// gateway stopped never ran. Now the later listeners run first and the exit code is process.exitCode as they left it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** The driver the gateway uses, for the other process to load. */
const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * The host application: its own 'exit' listener (exit code 3 when it says so) registered before the gateway starts,
 * a user registered through the proxy port, the store's -wal and -shm deleted and made again by another process that
 * commits and dies unclosed, the gateway closed, then a second 'exit' listener that writes `marker`.
 */
function hostScript(dir: string, backendPort: number): string {
  const file = join(dir, 'portcullis.db');
  const other = `
    const db = new (require(${JSON.stringify(BETTER_SQLITE3)}))(${JSON.stringify(file)});
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE other_rows (v INTEGER)');
    db.exec('INSERT INTO other_rows VALUES (1)');
    process.exit(0);`;
  return `
    import { request } from 'node:http';
    import { rmSync, writeFileSync } from 'node:fs';
    import { spawnSync } from 'node:child_process';
    import { startGateway } from ${JSON.stringify(join(ROOT, 'dist/index.js'))};
    process.on('exit', () => { process.exitCode = 3; });
    const gateway = await startGateway({
      server: { listen_host: '127.0.0.1', listen_port: 0 },
      admin: { enabled: false },
      load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: ${backendPort} }], health_check: { enabled: false } },
      jwt: { secret: ${JSON.stringify(TEST_SECRET)} },
      middleware: { auth: { enabled: true, argon2: ${JSON.stringify(FAST_ARGON2)} }, rate_limit: { auth: { enabled: false } } },
      logging: { level: 'warn', format: 'json' },
    }, { dataDir: ${JSON.stringify(dir)} });
    const body = JSON.stringify({ email: 'host@example.com', password: 'SecurePass123!' });
    const status = await new Promise((resolve, reject) => {
      const req = request(gateway.url + '/auth/register', { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(body);
    });
    if (status !== 201) throw new Error('register answered ' + status);
    rmSync(${JSON.stringify(`${file}-wal`)});
    rmSync(${JSON.stringify(`${file}-shm`)});
    const made = spawnSync(process.execPath, ['-e', ${JSON.stringify(other)}], { stdio: 'inherit' });
    if (made.status !== 0) throw new Error('the other process failed');
    await gateway.close();
    process.on('exit', (code) => writeFileSync(${JSON.stringify(join(dir, 'marker'))}, String(code)));
    process.stdout.write('closed\\n');`;
}

describe('an embedding host whose gateway left its SQLite connection open at close', () => {
  let backend: TestBackend;
  let dir: string;
  before(async () => {
    backend = await startBackend('echo');
    dir = mkdtempSync(join(tmpdir(), 'portcullis-left-open-host-'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await backend?.stop();
  });

  test("keeps its own exit: its listeners' exit code, and a listener added after the close runs", { timeout: 30_000 }, async () => {
    const script = join(dir, 'host.mjs');
    writeFileSync(script, hostScript(dir, backend.port));
    const child = spawn(process.execPath, [script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const bound = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const exited = await childExit(child);
    clearTimeout(bound);
    assert.match(stdout, /^closed$/m, `${stdout}\n${stderr}`);
    // The connection was left open (the files are not its own): the other process's -wal is still there.
    assert.ok(existsSync(join(dir, 'portcullis.db-wal')), 'the -wal at the path kept');
    // Before the fix: { code: 0 } and no marker (process.exit(0) from the gateway's listener, before the host's).
    assert.deepEqual(exited, { code: 3, signal: null }, stderr);
    assert.ok(existsSync(join(dir, 'marker')), 'the listener added after the close ran');
    assert.equal(readFileSync(join(dir, 'marker'), 'utf8'), '0', 'with the code the exit began with, as node passes it');
  });
});
