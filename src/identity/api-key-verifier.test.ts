// ApiKeyVerifier's cache against a real SQLite store, on a clock the test drives: which keys would cost a store read
// of a key the store has never been seen to know (needsStore: the ones the authenticate phase gates behind the
// client's key-read bucket), and that made-up keys never push a real one out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KvStore } from '../kv/kv-store.js';
import { createMemoryKvStore } from '../kv/memory.js';
import { openSqliteUserStore, type SqliteUserStore } from '../store/sqlite.js';
import { generateApiKey } from './api-key-format.js';
import { ApiKeyVerifier } from './api-key-verifier.js';

/** A migrated SQLite user store in a directory of its own and a memory KV store, both closed after the test. */
async function openStores(t: TestContext): Promise<{ store: SqliteUserStore; kv: KvStore }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-api-key-verifier-'));
  const store = openSqliteUserStore({ dataDir });
  const kv = createMemoryKvStore();
  t.after(async () => {
    await store.close();
    await kv.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await store.migrate();
  return { store, kv };
}

/** Stores `key` (never expiring) as the CLI would. */
async function createKey(store: SqliteUserStore, key: ReturnType<typeof generateApiKey>, name: string): Promise<void> {
  await store.createApiKey(
    { id: key.id, name, keyHash: key.keyHash, expiresAt: null },
    { actor: 'cli', action: 'create_api_key', targetId: key.id, at: new Date() },
  );
}

test('a known key past its cache TTL is re-read without the gate; only keys the store never knew are gated', async (t) => {
  const { store, kv } = await openStores(t);
  const real = generateApiKey();
  await createKey(store, real, 'billing');
  let now = Date.now();
  const verifier = new ApiKeyVerifier({ store, kv, ttlMs: 1000, maxEntries: 10, maxMisses: 2, now: () => now, clock: () => now });

  assert.equal(verifier.needsStore(real.key), true, 'never read: gated');
  assert.equal((await verifier.check(real.key)).kind, 'ok');
  assert.equal(verifier.needsStore(real.key), false, 'fresh in the cache');
  now += 5000;
  assert.equal(verifier.needsStore(real.key), false, 'past its TTL, but the store knew it: re-read without the gate');

  const madeUp = generateApiKey().key;
  assert.equal((await verifier.check(madeUp)).kind, 'invalid');
  assert.equal(verifier.needsStore(madeUp), false, 'a fresh cached miss answers without the store');
  now += 5000;
  assert.equal(verifier.needsStore(madeUp), true, 'a stale miss is gated again');
  assert.equal(verifier.needsStore('not-a-key'), false, 'malformed: refused without the store');

  // More made-up keys than the miss cache holds: the real key's entry stays.
  for (let i = 0; i < 5; i++) await verifier.check(generateApiKey().key);
  assert.equal(verifier.needsStore(real.key), false, 'made-up keys evicted only each other');
});

test('an unknown key is cached for 30 s at most, a known one for the whole TTL', async (t) => {
  const { store, kv } = await openStores(t);
  const real = generateApiKey();
  await createKey(store, real, 'billing');
  let now = Date.now();
  const verifier = new ApiKeyVerifier({ store, kv, ttlMs: 300_000, now: () => now, clock: () => now });
  // Unknown when first asked, as on a replica that has not caught up with the key's creation yet.
  const late = generateApiKey();
  assert.equal((await verifier.check(late.key)).kind, 'invalid');
  assert.equal((await verifier.check(real.key)).kind, 'ok');
  await createKey(store, late, 'late');
  now += 29_000;
  assert.equal((await verifier.check(late.key)).kind, 'invalid', 'the cached miss, within 30 s');
  now += 2_000;
  assert.equal(verifier.needsStore(late.key), true, 'a miss past 30 s is stale, though the TTL is 5 minutes');
  assert.equal((await verifier.check(late.key)).kind, 'ok', 'read again: the store knows it now');
  // The known key's record, changed in the store alone (no revocation store, no forget()): what the cache still holds
  // shows whether it was read again.
  await store.revokeApiKey(real.id, { actor: 'cli', action: 'revoke_api_key', targetId: real.id, at: new Date() });
  now += 268_000;
  assert.equal((await verifier.check(real.key)).kind, 'ok', 'known: its cached record, 299 s on (TTL 300 s)');
  now += 2_000;
  assert.equal((await verifier.check(real.key)).kind, 'invalid', 'past the TTL: read again');
});

test('cache ages run on the monotonic clock: a wall clock stepped back keeps no answer fresh; expiry stays wall clock', async (t) => {
  const { store, kv } = await openStores(t);
  let wall = Date.now();
  let mono = 0;
  const verifier = new ApiKeyVerifier({ store, kv, ttlMs: 30_000, now: () => wall, clock: () => mono });
  // A key tried before it exists (a deploy that hands it out before the store has it): a cached miss.
  const late = generateApiKey();
  assert.equal((await verifier.check(late.key)).kind, 'invalid');
  await store.createApiKey(
    { id: late.id, name: 'late', keyHash: late.keyHash, expiresAt: new Date(wall + 60 * 60_000) },
    { actor: 'cli', action: 'create_api_key', targetId: late.id, at: new Date(wall) },
  );
  // The wall clock goes back 10 minutes (NTP, a restored snapshot) while 31 s pass: the miss is stale all the same.
  wall -= 10 * 60_000;
  mono += 31_000;
  assert.equal((await verifier.check(late.key)).kind, 'ok', 'the store is asked again once the answer is 30 s old');
  // Expiry is a date, judged on the wall clock: past it, refused from the cache.
  wall += 2 * 60 * 60_000;
  assert.equal((await verifier.check(late.key)).kind, 'invalid', 'expired by the wall clock');
});
