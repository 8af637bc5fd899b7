// The SQLite store on a full disk (SQLITE_FULL), the data dir on a 512 KiB tmpfs of the test's own, filled by another
// file: registrations, logins and refreshes are refused 503 with Retry-After and the code in their request lines, the
// gateway stays up and keeps proxying signed-in users, and once space returns it serves again. This held when it was
// first run (no fix); it guards the behaviour. Needs root (mount), as the other tests of the store's files do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { assertSafeError, FAST_ARGON2, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';

const PASSWORD = 'SecurePass123!';

describe('the SQLite store on a full disk', () => {
  let backend: TestBackend;
  let gw: GatewayProcess;
  let client: TestClient;
  let mountPoint: string;
  let mounted = false;
  before(async () => {
    backend = await startBackend('echo');
    mountPoint = mkdtempSync(join(tmpdir(), 'portcullis-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', mountPoint]);
    mounted = true;
    gw = await spawnGateway(
      {
        load_balancing: { upstreams: upstreams([backend.port]) },
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
        admin: { enabled: false },
      },
      { dataDir: join(mountPoint, 'data') },
    );
    client = createClient();
  });
  after(async () => {
    await client?.close();
    await gw?.cleanup();
    await backend?.stop();
    if (mounted) execFileSync('umount', [mountPoint]);
    if (mountPoint !== undefined) rmSync(mountPoint, { recursive: true, force: true });
  });

  test('writes are refused 503 (SQLITE_FULL) while it is full, the gateway lives, and serves again once space returns', async () => {
    const first = await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(first.status, 201, first.text);
    const session = first.json<{ access_token: string; refresh_token: string }>();
    const filler = join(mountPoint, 'filler');
    // Fills what is left (ENOSPC part way is the point: the bytes written stay).
    assert.throws(() => writeFileSync(filler, Buffer.alloc(1024 * 1024)), { code: 'ENOSPC' });
    const refused = [
      await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD }),
      await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: session.refresh_token }),
    ];
    for (const res of refused) {
      assertSafeError(res, 503, [PASSWORD, session.refresh_token]);
      assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
    }
    await waitFor(
      () => gw.logs.filter((l) => l.msg === 'Request Completed' && l.cause === 'StoreUnavailableError <- SqliteError(SQLITE_FULL)').length === 2,
      'two request lines naming SQLITE_FULL',
    );
    const proxied = await client.request(`${gw.url}/anything`, { headers: { authorization: `Bearer ${session.access_token}` } });
    assert.equal(proxied.status, 200, proxied.text);
    assert.equal(gw.child.exitCode, null, 'the gateway is still running');
    unlinkSync(filler);
    assert.equal((await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD })).status, 201);
    assert.equal((await client.postJson(`${gw.url}/auth/refresh`, { refresh_token: session.refresh_token })).status, 200);
  });
});
