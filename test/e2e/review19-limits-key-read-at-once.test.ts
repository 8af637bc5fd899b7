// Made-up API keys sent all at once, each on a connection of its own, from one address. The address's key-read bucket
// was only looked at before each key's store read and spent after it: every look made before the first read ended saw
// the same unspent tokens, so 200 keys at once with a burst of 3 made 40 reads of the user store (53 on Redis) where
// 3 were promised, and again at each refill. The store is PostgreSQL with its api_keys table locked: every read the
// gateway starts waits on the lock, where the test counts them, then all are let go.
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { sleep } from '../helpers/wait.js';
import { deleteRedisKeys, REDIS_URL, requireRedis } from './ratelimit-helpers.js';
import { uniquePrefix } from '../kv/redis-helpers.js';

const pgSkip = await requirePostgres();
const redisSkip = pgSkip || (await requireRedis());
const BURST = 2;
const AT_ONCE = 30;

function madeUpKey(): string {
  return `pk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('hex')}`;
}

let db: IsolatedDatabase | undefined;
before(async () => {
  if (!pgSkip) db = await isolatedDatabase();
});
after(() => db?.cleanup('pc-none-'));

/** Sends AT_ONCE made-up keys at once with api_keys locked; returns the reads seen waiting, then every status. */
async function sprayWhileLocked(stack: AuthStack, appName: string, url: string): Promise<{ reads: number; statuses: number[] }> {
  const locker = new pg.Client({ connectionString: url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');
    const sent = Array.from({ length: AT_ONCE }, () =>
      stack.client.request(`${stack.url}/svc`, { headers: { 'x-api-key': madeUpKey() } }).then((r) => r.status),
    );
    // Long enough for every request to have been read and looked at, and a read started for each the look let go.
    let reads = 0;
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      reads = Math.max(reads, (await lockWaiters(appName)).length);
    }
    await locker.query('ROLLBACK');
    return { reads, statuses: (await Promise.all(sent)).sort() };
  } finally {
    await locker.end().catch(() => undefined);
  }
}

function describeStore(name: string, skip: string | false, redis: () => { url: string; key_prefix: string } | undefined): void {
  describe(name, { skip }, () => {
    let stack: AuthStack;
    const appName = uniqueApplicationName('keyreadonce');
    let url: string;
    before(async () => {
      url = taggedUrl(db!.name, appName);
      stack = await startAuthStack({
        // A pool larger than the burst, so the pool is not what bounds the reads.
        database: { url, pool_size: 12 },
        ...(redis() ? { redis: redis()! } : {}),
        rateLimit: { enabled: false, requests_per_minute: 1, burst_size: BURST },
      });
    });
    after(() => stack?.close());

    test(`${AT_ONCE} made-up keys at once make at most ${BURST} store reads, and every one is answered`, async () => {
      const { reads, statuses } = await sprayWhileLocked(stack, appName, url);
      assert.ok(reads >= 1, 'the reads the bucket allows do reach the store');
      assert.ok(reads <= BURST, `${reads} store reads waiting at once for a key-read burst of ${BURST}`);
      const counts = statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});
      assert.deepEqual(counts, { 401: BURST, 429: AT_ONCE - BURST }, JSON.stringify(counts));
    });
  });
}

describeStore('memory rate-limit store', pgSkip, () => undefined);

const prefix = uniquePrefix('review19-key-read');
after(() => (redisSkip ? undefined : deleteRedisKeys(REDIS_URL, prefix)));
describeStore('Redis rate-limit store', redisSkip, () => ({ url: REDIS_URL, key_prefix: prefix }));
