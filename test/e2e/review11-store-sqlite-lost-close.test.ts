// A gateway whose SQLite store's files were lost or made unwritable under it (src/store/sqlite-file-guard.ts) answers
// 503 from then on; then it is stopped. Closing the connection ran SQLite's closing checkpoint all the same:
// - the -wal and -shm deleted, and made again by another process on the same database (a second gateway, the CLI,
//   a sqlite3 shell) that crashed before it checkpointed: its committed rows were in that -wal alone, and the stopping
//   gateway checkpointed its own old frames into the database and then DELETED the -wal and -shm at the paths, the
//   other process's: its rows were gone. (While that process runs, its lock keeps SQLite from doing so.)
// - the -shm immutable: the checkpoint's write to SQLite's mapping of it was a SIGBUS, the stop ended by a signal.
// Now a connection whose files at the paths are no longer its own, or whose -shm cannot be written, is never closed:
// the process's exit releases it, as after a crash, and the next opener recovers the -wal.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { spawnGateway, tempDataDir } from '../helpers/gateway.js';
import { sqliteAuthConfig as config, storeBenchHooks } from '../helpers/sqlite-store-gateway.js';
import { assertSafeError, uniqueEmail } from '../helpers/auth-gateway.js';
import { childExit } from '../helpers/child-exit.js';

const PASSWORD = 'SecurePass123!';
/** The driver the gateway uses, for the other process to load. */
const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * Another process opens the database at `file` (WAL, never checkpointing), commits `rows` rows to a table of its own and
 * stays open; resolves once committed.
 */
async function otherWriter(file: string, rows: number): Promise<ChildProcess> {
  const script = `
    const db = new (require(${JSON.stringify(BETTER_SQLITE3)}))(${JSON.stringify(file)});
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE other_rows (v INTEGER)');
    const insert = db.prepare('INSERT INTO other_rows VALUES (?)');
    for (let i = 0; i < ${rows}; i++) insert.run(i);
    process.stdout.write('committed\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(chunk.toString().trim(), 'committed');
  return child;
}

const identity = (path: string): string => {
  const stats = statSync(path);
  return `${stats.dev}:${stats.ino}`;
};

describe('a gateway whose SQLite files are no longer its own stops without touching them', () => {
  const s = storeBenchHooks();

  test("the -wal and -shm deleted and made again by another process that crashed: its committed rows survive the gateway's stop", async () => {
    const dataDir = tempDataDir();
    s.cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const file = join(dataDir, 'portcullis.db');
    const gw = await spawnGateway(config(s.backend), { dataDir });
    s.cleanups.push(() => gw.cleanup());
    const first = await s.client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(first.status, 201, first.text);
    rmSync(`${file}-wal`);
    rmSync(`${file}-shm`);
    const other = await otherWriter(file, 100);
    s.cleanups.push(() => void other.kill('SIGKILL'));
    // It crashes before any checkpoint: its 100 rows are in the -wal now at the path, and nowhere else.
    other.kill('SIGKILL');
    await childExit(other);
    const wal = identity(`${file}-wal`);
    const refused = await s.client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assertSafeError(refused, 503, [PASSWORD]);
    gw.signal('SIGTERM');
    assert.deepEqual(await gw.exited, { code: 0, signal: null }, gw.stderr());
    // Before the fix: the -wal was deleted by the gateway's close (ENOENT here) and the rows were gone.
    assert.equal(identity(`${file}-wal`), wal, "the other process's -wal is still at its path");
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.prepare('SELECT count(*) FROM other_rows').pluck().get(), 100);
    } finally {
      db.close();
    }
  });

  test('the -shm immutable: SIGTERM exits 0 (not SIGBUS), and once it is writable a restart serves the users registered before', async () => {
    const dataDir = tempDataDir();
    s.cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const shm = join(dataDir, 'portcullis.db-shm');
    let gw = await spawnGateway(config(s.backend), { dataDir });
    s.cleanups.push(() => gw.cleanup());
    const email = uniqueEmail();
    const first = await s.client.postJson(`${gw.url}/auth/register`, { email, password: PASSWORD });
    assert.equal(first.status, 201, first.text);
    execFileSync('chattr', ['+i', shm]);
    // Pushed after the gateway's cleanup: undone first, whatever the test did.
    s.cleanups.push(() => void execFileSync('chattr', ['-i', shm]));
    // Written back, the mapping's pages are write-protected again: the next write to them faults, as it would in time.
    execFileSync('sync', ['-f', shm]);
    const refused = await s.client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assertSafeError(refused, 503, [PASSWORD]);
    gw.signal('SIGTERM');
    // Before the fix: { code: null, signal: 'SIGBUS' }: the close checkpointed through the mapping of the immutable -shm.
    assert.deepEqual(await gw.exited, { code: 0, signal: null }, gw.stderr());
    execFileSync('chattr', ['-i', shm]);
    gw = await spawnGateway(config(s.backend), { dataDir });
    const login = await s.client.postJson(`${gw.url}/auth/login`, { email, password: PASSWORD });
    assert.equal(login.status, 200, login.text);
  });
});
