// A log-out everywhere made by a gateway of the previous version (a rolling upgrade: it runs on schema 6, as it only
// refuses a schema older than its own) writes a revocation time and no generation, in Redis and in the change log.
// Tokens carrying a generation issued before it are then judged by time too (subject-revocation.ts). A gateway of
// the new version that starts afterwards replays the change log into the same Redis, oldest first: its replay of an
// earlier log-out, which has a generation, must not mark that later time as covered by the generation, or the
// sessions the user killed come back on every gateway. (A gateway's regular poll replays its own changes too: a
// second log-out within a second of the first, made by the previous version, was undone the same way.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import type { GatewayProcess } from '../helpers/gateway.js';
import { taggedUrl, uniqueApplicationName, withAdmin } from '../helpers/postgres-db.js';
import { sharedStoresHooks } from '../helpers/shared-stores.js';
import { createMemoryKvStore } from '../../src/kv/memory.js';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { subjectRevokedKey } from '../../src/kv/redis-keys.js';
import type { KvStore } from '../../src/kv/kv-store.js';
import { bearer, login, REDIS_URL, register } from './ratelimit-helpers.js';

const stores = await sharedStoresHooks('replay');
const { id, domain, keyPrefix, skip, client, status } = stores;

/** The previous version's script for a user's revocation time (redis.ts before 0f82ea0), verbatim. */
const PREVIOUS_KEEP_LATEST_SCRIPT = `local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

const gateways: GatewayProcess[] = [];

before(async () => {
  if (skip) return;
  gateways.push(await stores.spawn());
});

/** What a gateway of the previous version did for a log-out everywhere: sessions, change-log row, Redis time. */
async function previousVersionLogoutEverywhere(userId: string, ttlMs: number): Promise<void> {
  const at = Date.now();
  await withAdmin(async (c) => {
    await c.query('UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL', [new Date(at), userId]);
    await c.query("INSERT INTO identity_changes (at, actor, action, target_id) VALUES ($1, 'user', 'logout', $2)", [new Date(at), userId]);
  }, taggedUrl(stores.db().name, uniqueApplicationName('replay-old')));
  const redis = createRedisClient({ url: REDIS_URL });
  await redis.connect();
  try {
    const key = subjectRevokedKey(keyPrefix, `user:${userId}`);
    await redis.eval(PREVIOUS_KEEP_LATEST_SCRIPT, { keys: [key], arguments: [String(at), String(ttlMs)] });
  } finally {
    await redis.close();
  }
}

test('a log-out everywhere of the previous version stays in force when a new gateway replays an earlier one', { skip }, async () => {
  const a = gateways[0]!;
  const user = await register(client, a.url, `u-mixed@${domain}`);
  // A log-out everywhere on this version: the user's generation goes to 1 (Redis "1:<time>").
  const first = await client.postJson(`${a.url}/auth/logout`, { all_sessions: true }, bearer(user));
  assert.equal(first.status, 200, first.text);
  // Past one poll of this gateway, which replays its own change too (the regular replay, before the one below).
  await new Promise((r) => setTimeout(r, 1500));
  // A session after it: its access token carries generation 1.
  const kept = await login(client, a.url, user.email);
  assert.equal(await status(a, kept.accessToken), 200, 'the session after the first log-out works');
  await new Promise((r) => setTimeout(r, 20));
  // The user logs out everywhere again, through a gateway of the previous version: a time, no generation.
  await previousVersionLogoutEverywhere(user.userId, 15 * 60_000 + 60_000);
  assert.equal(await status(a, kept.accessToken), 401, 'refused by the later log-out (by time)');
  // Rolling upgrade goes on: a new gateway starts and replays the change log into the same Redis.
  gateways.push(await stores.spawn());
  const b = gateways[1]!;
  await new Promise((r) => setTimeout(r, 1500)); // at least one poll past its start
  assert.equal(await status(b, kept.accessToken), 401, 'still refused on the new gateway');
  assert.equal(await status(a, kept.accessToken), 401, 'still refused on the first gateway');
});

test('the stores: replaying an earlier revocation with a generation keeps a later one without it in force', { skip }, async () => {
  const prefix = `${keyPrefix}stores:`;
  const redis = createRedisKvStore({ url: REDIS_URL, keyPrefix: prefix });
  try {
    // It connects in the background: wait until it answers.
    for (let i = 0; ; i++) {
      try {
        await redis.ping();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    for (const [name, store] of [['memory', createMemoryKvStore()], ['redis', redis]] as [string, KvStore][]) {
      const subject = `user:${name}-${id}`;
      const t1 = Date.now();
      await store.revokeSubject(subject, t1, 60_000, 1); // the first log-out, this version
      await store.revokeSubject(subject, t1 + 1000, 60_000); // the second, the previous version: time only
      await store.revokeSubject(subject, t1, 60_000, 1); // a replay of the first
      assert.equal(await store.isRevoked(`jti-${name}`, subject, t1 + 500, 1), true, `${name}: issued between the two`);
      assert.equal(await store.isRevoked(`jti-${name}`, subject, t1 + 1500, 1), false, `${name}: issued after both`);
      assert.equal(await store.isRevoked(`jti-${name}`, subject, t1 + 1500, 0), true, `${name}: below the generation`);
    }
  } finally {
    await redis.close();
  }
});
