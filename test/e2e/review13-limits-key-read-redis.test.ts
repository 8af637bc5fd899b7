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
before(async () => {
  if (skip) return;
  stack = await startAuthStack({
    admin: { token: ADMIN_TOKEN },
    redis: { url: REDIS_URL, key_prefix: prefix },
    rateLimit: { enabled: true, requests_per_minute: 7, burst_size: 3 },
  });
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
  const port = Number(new URL(stack.url).port);
  const sockets = await Promise.all(keys.map(() => openSocket(port)));
  const responses = sockets.map((socket) => responseUntilClose(socket, 15_000));
  sockets.forEach((socket, i) => socket.write(`GET /svc HTTP/1.1\r\nHost: api.test\r\nX-API-Key: ${keys[i]}\r\nConnection: close\r\n\r\n`));
  const statuses = (await Promise.all(responses)).map((r) => r.status);
  assert.deepEqual(statuses, Array(10).fill(200));
});

test('made-up keys from that address still spend it: past its burst, 429 before the store is asked', { skip }, async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await stack.client.request(`${stack.url}/svc`, { headers: { 'x-api-key': `pk_${'a'.repeat(8)}_${'b'.repeat(40)}${i}` } });
    statuses.push(res.status);
  }
  assert.ok(statuses.includes(429), JSON.stringify(statuses));
  assert.equal(statuses[0], 401);
});
