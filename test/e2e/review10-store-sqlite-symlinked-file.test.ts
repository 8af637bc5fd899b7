// portcullis.db a symbolic link to a file elsewhere (the store kept on another volume). SQLite resolves the link and
// keeps its -wal and -shm beside the target; the file guard (src/store/sqlite-file-guard.ts) watched `portcullis.db-wal`
// and `-shm` beside the link, which never exist, so none of its checks of those files ran: the target's -shm cut short
// under a running gateway killed it by SIGBUS at the next registration, the fault a5c67d6 answers with 503.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, tempDataDir, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';

const PASSWORD = 'SecurePass123!';

describe('the user store file a symbolic link to a file elsewhere', () => {
  let backend: TestBackend;
  let client: TestClient;
  let gw: GatewayProcess | undefined;
  let dataDir: string;
  let elsewhere: string;
  before(async () => {
    backend = await startBackend('echo');
    client = createClient();
    dataDir = tempDataDir();
    elsewhere = mkdtempSync(join(tmpdir(), 'portcullis-store-volume-'));
    // Empty: start makes the schema in it, through the link.
    writeFileSync(join(elsewhere, 'users.db'), '');
    symlinkSync(join(elsewhere, 'users.db'), join(dataDir, 'portcullis.db'));
  });
  after(async () => {
    await gw?.cleanup();
    await client?.close();
    await backend?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  test("the target's -shm cut short: 503 with Retry-After, not a gateway killed by SIGBUS", async () => {
    gw = await spawnGateway(
      {
        load_balancing: { upstreams: upstreams([backend.port]) },
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
        admin: { enabled: false },
      },
      { dataDir },
    );
    const first = await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(first.status, 201, first.text);
    assert.ok(readdirSync(elsewhere).includes('users.db-shm'), `SQLite keeps its -shm beside the target: ${readdirSync(elsewhere).join(' ')}`);
    truncateSync(join(elsewhere, 'users.db-shm'), 0);
    // Before the fix: no answer (the request failed with a closed socket), the gateway ended by SIGBUS.
    const res = await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD }).catch((err: Error) => err);
    assert.ok(!(res instanceof Error), `an answer, not ${String(res)}; gateway exit: ${String(gw.child.signalCode)}`);
    assert.equal(res.status, 503, res.text);
    assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
    await waitFor(() => gw!.logs.some((l) => l.msg === 'User Store File Lost' && l.part === 'shm' && l.code === 'FILE_TRUNCATED'), 'the User Store File Lost line');
    assert.equal(gw.child.exitCode, null, 'still running');
    assert.equal(gw.child.signalCode, null, 'not killed');
  });
});
