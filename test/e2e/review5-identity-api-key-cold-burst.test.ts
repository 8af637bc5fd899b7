// Valid API keys behind one address, all arriving at once on a cold cache (the gateway just restarted, or the
// cache's 30 s ran out while the store answers slowly): each key's store read is counted against the address's
// key-read bucket, and while those reads were under way their tokens were held, so the keys past that bucket's
// burst got 429 though every one of them was valid and within its own limit. Only unknown keys may spend it.
// The store is PostgreSQL behind a TCP forwarder whose one connection is black-holed: the reads hang until
// they time out, so every request is counted while the others' reads are still under way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { isolatedDatabaseBehindLink, type DatabaseBehindLink } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import type { TcpForwarder } from '../helpers/tcp-forwarder.js';

const pgSkip = await requirePostgres();
if (pgSkip) {
  test('valid API keys at once on a cold cache', { skip: pgSkip }, () => {});
} else {
  let pgLink: DatabaseBehindLink;
  let forwarder: TcpForwarder;
  let stack: AuthStack;
  before(async () => {
    pgLink = await isolatedDatabaseBehindLink();
    forwarder = pgLink.link;
    // One store connection; every bucket allows a burst of 3 (the failed-auth protections are on with auth).
    stack = await startAuthStack({
      database: { url: pgLink.url, pool_size: 1 },
      admin: { token: ADMIN_TOKEN },
      rateLimit: { enabled: true, requests_per_minute: 1, burst_size: 3 },
    });
  });
  after(async () => {
    await stack?.close();
    await pgLink?.close('pc-none-');
  });

  test('six valid keys at once from one address, their reads slow: none is refused 429', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await adminApi(stack.client, stack.gw.adminUrl!).post('/admin/api-keys', { name: `svc-${i}` });
      assert.equal(res.status, 201, res.text);
      keys.push(res.json<{ key: string }>().key);
    }
    // The pool's one connection (just used) now swallows every byte: the first read hangs, the others wait for it.
    forwarder.blackHole();
    const statuses = await Promise.all(
      keys.map(async (key) => (await stack.client.request(`${stack.url}/svc`, { headers: { 'x-api-key': key } })).status),
    );
    // 503 while the store does not answer, 200 once a new connection does; never a rate limit.
    assert.ok(!statuses.includes(429), JSON.stringify(statuses));
  });
}
