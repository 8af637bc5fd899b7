// Valid API keys never spend the address's key-read bucket (README, Rate limiting): only keys the store does not find
// valid do. It was looked at by a take given back at once, which on Redis held the token for a round trip: ten valid
// keys at once from one address found a burst of 3 emptied by each other's looks, and seven got 429 (the memory
// store answered all ten 200). The look now spends nothing (KvStore.peek).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skip = await requireRedis(); // throws under CI=true when Redis is missing
const prefix = `portcullis-test:key-read:${runId()}:`;
let stack: AuthStack;
let port: number;
before(async () => {
  if (skip) return;
  stack = await startAuthStack({
    admin: { token: ADMIN_TOKEN },
    redis: { url: REDIS_URL, key_prefix: prefix },
    rateLimit: { enabled: true, requests_per_minute: 7, burst_size: 3 },
  });
  port = Number(new URL(stack.url).port);
});
after(async () => {
  await stack?.close();
  if (!skip) await deleteRedisKeys(REDIS_URL, prefix);
});

test('ten valid keys at once from one address, none cached: none is refused 429', { skip }, async () => {
  const keys: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await adminApi(stack.client, stack.gw.adminUrl!).post('/admin/api-keys', { name: `tenant-${i}` });
    assert.equal(res.status, 201, res.text);
    keys.push(res.json<{ key: string }>().key);
  }
  // Every connection open first, then every request written in one go: the looks reach Redis together.
  const sockets = await Promise.all(keys.map(() => openSocket(port)));
  const responses = sockets.map((socket) => responseUntilClose(socket, 15_000));
  sockets.forEach((socket, i) => socket.write(`GET /svc HTTP/1.1\r\nHost: api.test\r\nX-API-Key: ${keys[i]}\r\nConnection: close\r\n\r\n`));
  const statuses = (await Promise.all(responses)).map((r) => r.status);
  assert.deepEqual(statuses, Array(10).fill(200));
});

test('made-up keys from that address still spend it: past its burst, even a valid uncached key waits', { skip }, async () => {
  const res = await adminApi(stack.client, stack.gw.adminUrl!).post('/admin/api-keys', { name: 'late' });
  assert.equal(res.status, 201, res.text);
  const valid = res.json<{ key: string }>().key;
  // From 127.0.0.1, whose key-read bucket the valid keys above only looked at.
  const from = async (key: string): Promise<number> => {
    const socket = await openSocket(port);
    const response = responseUntilClose(socket, 15_000);
    socket.write(`GET /svc HTTP/1.1\r\nHost: api.test\r\nX-API-Key: ${key}\r\nConnection: close\r\n\r\n`);
    return (await response).status;
  };
  const statuses: number[] = [];
  // Made-up keys of the real shape (16 hex id, 64 hex secret): each costs a store read, so each spends a token.
  for (let i = 0; i < 3; i++) statuses.push(await from(`pk_${String(i).repeat(16)}_${'b'.repeat(64)}`));
  assert.deepEqual(statuses, [401, 401, 401]);
  // Three unknown keys spent the key-read bucket's burst: the valid key, not read yet, is refused before its read.
  // (Its own limit is the consumer's bucket, untouched; the address's traffic bucket does not count keys.)
  assert.equal(await from(valid), 429);
});
