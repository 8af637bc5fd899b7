// The SQLite store made read-only under a running gateway. SQLite maps the -shm file (the WAL index) into memory and
// writes it on every transaction: with the file immutable (chattr +i, which stops root too) the next write to the
// mapping was a SIGBUS, and the first registration or login killed the gateway. On a read-only bind mount of the data
// dir the gateway went on writing through the mount it had opened, a file an operator had made read-only, where a
// start on the same files is refused (SQLITE_READONLY). Now every store step first asks whether the -shm can be
// written at its path (access(2) W_OK, which answers EPERM for an immutable file and EROFS on a read-only mount, root
// or not): when not, the step is refused with a 503 naming the code, the gateway stays up, proxying goes on, and the
// store serves again once the file is writable.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { assertSafeError, uniqueEmail } from '../helpers/auth-gateway.js';
import { spawnedStoreHooks as hooks, type SpawnedStore as Setup } from '../helpers/sqlite-store-gateway.js';
import { waitFor } from '../helpers/wait.js';

const PASSWORD = 'SecurePass123!';

async function register(s: Setup) {
  return s.client.postJson(`${s.gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
}

/** Registration refused 503 naming `code` in its request line; the gateway up and proxying a signed-in user. */
async function assertRefused(s: Setup, code: string, accessToken: string): Promise<void> {
  const res = await register(s);
  // Before the fix (the -shm immutable) the gateway died of SIGBUS here and the request got no answer.
  assert.equal(s.gw.child.signalCode, null, `the gateway died: ${s.gw.child.signalCode}`);
  assertSafeError(res, 503, [PASSWORD]);
  assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
  const completed = () => s.gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
  await waitFor(() => completed() !== undefined, 'the request line');
  const line = completed();
  assert.equal(line?.cause, `StoreUnavailableError <- StoreFileUnwritableError(${code})`, JSON.stringify(line));
  assert.equal((await s.client.request(`${s.gw.url}/health`)).status, 200);
  const proxied = await s.client.request(`${s.gw.url}/anything`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(proxied.status, 200, proxied.text);
}

describe('the -shm file made immutable under a running gateway', () => {
  const s = hooks();
  test('a registration is refused 503 (EPERM) instead of killing the gateway, and served once the file is writable', async () => {
    const first = await register(s);
    assert.equal(first.status, 201, first.text);
    const shm = `${s.file}-shm`;
    execFileSync('chattr', ['+i', shm]);
    s.undo.push(() => execFileSync('chattr', ['-i', shm]));
    await assertRefused(s, 'EPERM', first.json<{ access_token: string }>().access_token);
    execFileSync('chattr', ['-i', shm]);
    assert.equal((await register(s)).status, 201);
  });
});

describe('the data dir bind-mounted read-only over itself under a running gateway', () => {
  const s = hooks();
  test('a registration is refused 503 (EROFS) as a start on it would be, and served once the mount is gone', async () => {
    const first = await register(s);
    assert.equal(first.status, 201, first.text);
    execFileSync('mount', ['--bind', s.dataDir, s.dataDir]);
    s.undo.push(() => execFileSync('umount', [s.dataDir]));
    execFileSync('mount', ['-o', 'remount,bind,ro', s.dataDir]);
    // Before the fix: 201, written through the mount the gateway had opened the files on.
    await assertRefused(s, 'EROFS', first.json<{ access_token: string }>().access_token);
    execFileSync('umount', [s.dataDir]);
    assert.equal((await register(s)).status, 201);
  });
});
