// An API key's last_used_at moves only for a request the key got admitted. A request carrying a valid key and,
// beside it, a token that fails (bad signature, garbage) is refused 401, yet the key's use was noted as soon as the
// key itself checked out: its last_used_at said it was used, though nothing was served under it, which misleads an
// operator retiring unused keys (or looking for a leaked key's use).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_FILE_NAME } from '../../src/store/sqlite.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
const dataDir = tempDataDir();
let backend: TestBackend;
let gw: InProcessGateway | undefined;

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess(
    {
      services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] } },
      routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'app' }],
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
      admin: { token: ADMIN_TOKEN },
    },
    dataDir,
  );
});

after(async () => {
  await client.close();
  await gw?.close();
  await backend?.stop();
});

test('a key refused because of the token beside it keeps its last_used_at; a key used alone gets one', async () => {
  const admin = adminApi(client, gw!.adminUrl!);
  const refused = (await admin.post('/admin/api-keys', { name: 'beside-bad-token' })).json<{ id: string; key: string }>();
  const used = (await admin.post('/admin/api-keys', { name: 'used-alone' })).json<{ id: string; key: string }>();
  for (const authorization of ['Bearer not-a-token', `Bearer ${'e30'}.${'e30'}.${'x'.repeat(43)}`]) {
    const res = await client.request(`${gw!.url}/x`, { headers: { 'x-api-key': refused.key, authorization } });
    assert.equal(res.status, 401, authorization);
  }
  assert.equal((await client.request(`${gw!.url}/x`, { headers: { 'x-api-key': used.key } })).status, 200);

  // The stop writes every use noted (last-used.ts); then the store is read as it was left (the helper's close would
  // remove the data dir too).
  await gw!.gateway.close();
  gw = undefined;
  const db = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
  try {
    const rows = db.prepare('SELECT id, last_used_at FROM api_keys').all() as Array<{ id: string; last_used_at: unknown }>;
    const lastUsed = new Map(rows.map((r) => [r.id, r.last_used_at]));
    assert.equal(lastUsed.get(refused.id), null, 'the refused requests noted no use');
    assert.notEqual(lastUsed.get(used.id) ?? null, null, 'the admitted request noted its use');
  } finally {
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
