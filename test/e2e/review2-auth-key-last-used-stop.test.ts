// What was wrong: an API key used while the periodic last_used_at write was running, and the gateway then stopped,
// kept its old last_used_at (NULL for a key never seen before): the stop's final flush joined the write already
// running, whose batch had been taken before that use, and the use noted after it was never written.
// What is right now: stopping writes every use noted up to then, the ones noted during a running write included.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { adminApi, startApiKeyGateway } from '../helpers/identity.js';
import { isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, withAdmin, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('API key last-used at stop', { skip: pgSkip }, () => {});
} else {
  describe('API key last_used_at when the gateway stops during a write', () => {
    const appName = uniqueApplicationName('lastused');
    const client = createClient();
    let db: IsolatedDatabase;
    let backend: TestBackend;
    let gw: InProcessGateway | undefined;
    let locker: pg.Client | undefined;

    before(async () => {
      db = await isolatedDatabase();
      backend = await startBackend('echo');
      gw = await startApiKeyGateway(taggedUrl(db.name, appName), backend.port);
    });
    after(async () => {
      await locker?.query('ROLLBACK').catch(() => undefined);
      await locker?.end().catch(() => undefined);
      await client.close();
      await gw?.close().catch(() => undefined);
      await backend?.stop();
      await db?.cleanup('pc-lastused-');
    });

    test('a use noted while the periodic write waits is written when the gateway stops', { timeout: 60_000 }, async () => {
      const admin = adminApi(client, gw!.adminUrl!);
      const first = (await admin.post('/admin/api-keys', { name: 'first' })).json<{ id: string; key: string }>();
      const second = (await admin.post('/admin/api-keys', { name: 'second' })).json<{ id: string; key: string }>();

      // SHARE mode: reads (the key lookups) go on, the last-used UPDATE waits.
      locker = new pg.Client({ connectionString: taggedUrl(db.name, `${appName}_locker`) });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE api_keys IN SHARE MODE');

      assert.equal((await client.request(`${gw!.url}/x`, { headers: { 'x-api-key': first.key } })).status, 200);
      // The periodic write (every 10 s) takes the batch holding the first key's use and waits on the lock.
      await waitFor(async () => (await lockWaiters(appName)).length === 1, 'the last-used write to wait on the lock', 15_000);
      // A use noted while that write waits.
      assert.equal((await client.request(`${gw!.url}/x`, { headers: { 'x-api-key': second.key } })).status, 200);

      const stopping = gw!.close();
      gw = undefined;
      await sleep(300);
      await locker.query('COMMIT');
      await stopping;

      const rows = await withAdmin(
        async (c) => (await c.query<{ id: string; last_used_at: Date | null }>('SELECT id, last_used_at FROM api_keys ORDER BY name')).rows,
        taggedUrl(db.name, `${appName}_check`),
      );
      const used = new Map(rows.map((r) => [r.id, r.last_used_at]));
      assert.ok(used.get(first.id), 'the first key, in the running write, has its last use');
      assert.ok(used.get(second.id), 'the second key, noted during that write, has its last use');
    });
  });
}
