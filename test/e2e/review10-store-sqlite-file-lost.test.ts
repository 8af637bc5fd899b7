// The SQLite file deleted or replaced under a running gateway. better-sqlite3 holds the file open, so the gateway
// went on reading and writing the deleted inode: registrations answered 201 and log-outs 200 into a file no one
// would ever open again. After the restart the users were gone, and a refresh token logged out after a backup was
// restored over the file was accepted again (the log-out had gone to the old file). Its -wal and -shm deleted, the
// gateway's writes went to a log other processes no longer saw. Now the store notices the file (or its -wal, -shm)
// is no longer the one it opened: every store step answers 503 with Retry-After, one warning names the file and the
// code (FILE_DELETED, FILE_REPLACED), /ready is not ready, and proxying goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, renameSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { assertSafeError, uniqueEmail } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { sqliteAuthConfig, spawnedStoreHooks, spawnStoreGateway, type SpawnedStore as Setup } from '../helpers/sqlite-store-gateway.js';
import { waitFor } from '../helpers/wait.js';

const PASSWORD = 'SecurePass123!';
/** The admin port on (port 0), for /ready. */
const ADMIN = { enabled: true, listen_port: 0, token: ADMIN_TOKEN };
const hooks = (): Setup => spawnedStoreHooks(ADMIN);

async function register(s: Setup, email = uniqueEmail()) {
  return s.client.postJson(`${s.gw.url}/auth/register`, { email, password: PASSWORD });
}

/**
 * The store refuses with a clear 503, says why once in the log, is not ready, and proxying goes on for a user whose
 * access token was issued before (`accessToken`): checking it needs no store.
 */
async function assertDetached(s: Setup, code: 'FILE_DELETED' | 'FILE_REPLACED' | 'FILE_TRUNCATED', accessToken: string): Promise<void> {
  const res = await register(s);
  assertSafeError(res, 503, [PASSWORD]);
  assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
  await waitFor(() => s.gw.logs.some((l) => l.msg === 'User Store File Lost'), 'the User Store File Lost line');
  const lost = s.gw.logs.filter((l) => l.msg === 'User Store File Lost');
  assert.equal(lost.length, 1, JSON.stringify(lost));
  assert.equal(lost[0]!.code, code);
  await waitFor(
    () => s.gw.logs.some((l) => l.msg === 'Request Completed' && l.status === 503 && l.cause === `StoreUnavailableError <- StoreFileLostError(${code})`),
    'a 503 request line naming the code',
  );
  assert.equal(lost[0]!.file, s.file);
  for (const line of s.gw.lines) assert.doesNotMatch(line, /\b(INSERT|SELECT|UPDATE) /, 'no SQL in the log');
  const ready = await s.client.request(`http://127.0.0.1:${s.gw.adminPort}/ready`);
  assert.equal(ready.status, 503, ready.text);
  assert.equal((await s.client.request(`${s.gw.url}/health`)).status, 200);
  const proxied = await s.client.request(`${s.gw.url}/anything`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(proxied.status, 200, `proxying goes on: ${proxied.text}`);
  assert.equal(s.gw.child.exitCode, null, 'the gateway is still running');
}

describe('the database file deleted under a running gateway', () => {
  const s = hooks();
  test('registrations are refused 503 instead of going to the deleted file and vanishing at the restart', async () => {
    const first = await register(s);
    assert.equal(first.status, 201, first.text);
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(s.file + suffix)) unlinkSync(s.file + suffix);
    // Before the fix: 201, and the user was gone once the gateway restarted.
    await assertDetached(s, 'FILE_DELETED', first.json<{ access_token: string }>().access_token);
  });

  test('a restart stops cleanly and serves on a new file at the path', async () => {
    s.gw.signal('SIGTERM');
    assert.equal((await s.gw.exited).code, 0, s.gw.stderr());
    s.gw = await spawnStoreGateway(s.backend, s.dataDir, ADMIN);
    assert.equal((await register(s)).status, 201);
  });
});

describe('the database file replaced by another (a backup restored, another gateway\'s file) under a running gateway', () => {
  const s = hooks();
  test('a log-out is refused 503 rather than written to the replaced file, where the restart would lose it', async () => {
    const res = await register(s);
    assert.equal(res.status, 201, res.text);
    const refreshToken = res.json<{ refresh_token: string }>().refresh_token;
    // A consistent copy of the store as it is now, renamed over the file as a restore does.
    const copy = join(s.dataDir, 'restored.db');
    const db = new Database(s.file, { readonly: true });
    await db.backup(copy);
    db.close();
    renameSync(copy, s.file);
    // Before the fix: 200 "Logged out", and once the gateway restarted the token refreshed again (200).
    const logout = await s.client.postJson(`${s.gw.url}/auth/logout`, { refresh_token: refreshToken });
    assertSafeError(logout, 503, [refreshToken]);
    await assertDetached(s, 'FILE_REPLACED', res.json<{ access_token: string }>().access_token);
  });
});

describe('the database\'s -wal and -shm deleted under a running gateway', () => {
  const s = hooks();
  test('writes are refused 503 instead of going to a write-ahead log other processes no longer see', async () => {
    const first = await register(s);
    assert.equal(first.status, 201, first.text);
    assert.ok(existsSync(`${s.file}-wal`) && existsSync(`${s.file}-shm`));
    for (const suffix of ['-wal', '-shm']) unlinkSync(s.file + suffix);
    await assertDetached(s, 'FILE_DELETED', first.json<{ access_token: string }>().access_token);
  });
});

describe('the database\'s -shm truncated under a running gateway', () => {
  const s = hooks();
  test('a registration is refused 503 instead of killing the gateway with a SIGBUS', async () => {
    const first = await register(s);
    assert.equal(first.status, 201, first.text);
    truncateSync(`${s.file}-shm`, 0);
    // Before the fix: no answer (the socket closed), the gateway ended by SIGBUS.
    await assertDetached(s, 'FILE_TRUNCATED', first.json<{ access_token: string }>().access_token);
  });
});

describe('a data dir given relative to the working directory, which the embedding process changes after start', () => {
  let backend: TestBackend;
  let base: string;
  let gw: InProcessGateway | undefined;
  let client: TestClient;
  const cwd = process.cwd();
  before(async () => {
    backend = await startBackend('echo');
    base = mkdtempSync(join(tmpdir(), 'portcullis-cwd-'));
    client = createClient();
  });
  after(async () => {
    process.chdir(cwd);
    await client?.close();
    // Not gw.close(): it removes its data dir by the relative path, here the checkout's.
    await gw?.gateway.close();
    await backend?.stop();
    if (base !== undefined) rmSync(base, { recursive: true, force: true });
  });

  test('the files are still found where they were opened: registrations go on', async () => {
    process.chdir(base);
    try {
      gw = await startInProcess(sqliteAuthConfig(backend), 'data');
    } finally {
      process.chdir(cwd);
    }
    const res = await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(res.status, 201, res.text);
    assert.ok(existsSync(join(base, 'data', 'portcullis.db')));
    assert.equal(gw.logs.filter((l) => l.msg === 'User Store File Lost').length, 0);
  });
});
