// A gateway whose SQLite -shm was cut short under it (FILE_TRUNCATED, src/store/sqlite-file-guard.ts) answers 503 and
// an operator restarts it. The stop ended by SIGBUS after 'Gateway Stopped': closing the connection checkpoints through
// SQLite's mapping of the -shm, past the file's end. Now the -shm gets its length back first (zeros: SQLite rebuilds the
// wal-index from the -wal), the stop exits 0 and the next start serves what was registered before.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { spawnGateway, tempDataDir } from '../helpers/gateway.js';
import { sqliteAuthConfig as config, storeBenchHooks } from '../helpers/sqlite-store-gateway.js';
import { uniqueEmail } from '../helpers/auth-gateway.js';

const PASSWORD = 'SecurePass123!';

describe('a gateway whose SQLite files were lost stops cleanly', () => {
  const s = storeBenchHooks();

  test('the -shm truncated: 503, then SIGTERM exits 0 (not SIGBUS), and a restart serves the users registered before', async () => {
    const dataDir = tempDataDir();
    s.cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    let gw = await spawnGateway(config(s.backend), { dataDir });
    s.cleanups.push(() => gw.cleanup());
    const email = uniqueEmail();
    const first = await s.client.postJson(`${gw.url}/auth/register`, { email, password: PASSWORD });
    assert.equal(first.status, 201, first.text);
    truncateSync(join(dataDir, 'portcullis.db-shm'), 0);
    const refused = await s.client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(refused.status, 503, refused.text);
    gw.signal('SIGTERM');
    // Before the fix: { code: null, signal: 'SIGBUS' }, after 'Gateway Stopped': the connection's close checkpointed
    // through SQLite's mapping of the cut -shm.
    assert.deepEqual(await gw.exited, { code: 0, signal: null }, gw.stderr());
    gw = await spawnGateway(config(s.backend), { dataDir });
    const login = await s.client.postJson(`${gw.url}/auth/login`, { email, password: PASSWORD });
    assert.equal(login.status, 200, login.text);
    const next = await s.client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD });
    assert.equal(next.status, 201, next.text);
  });
});
