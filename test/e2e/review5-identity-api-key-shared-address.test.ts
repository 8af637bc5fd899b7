// Valid API keys behind one address (a NAT, an office, a CI fleet) are each limited by their own consumer bucket,
// never by the address's. A key with no cached answer (the first request after a start, or after the cache's 30 s)
// was counted against the address's bucket before its store read, and refused 429 when that bucket was empty:
// spent by the anonymous traffic of the same address, or by the other keys' own first requests at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';

async function createKey(stack: AuthStack, name: string): Promise<string> {
  const res = await adminApi(stack.client, stack.gw.adminUrl!).post('/admin/api-keys', { name });
  assert.equal(res.status, 201, res.text);
  return res.json<{ key: string }>().key;
}

async function withKey(stack: AuthStack, key: string): Promise<number> {
  return (await stack.client.request(`${stack.url}/svc`, { headers: { 'x-api-key': key } })).status;
}

describe('valid API keys behind one busy address', () => {
  let stack: AuthStack;
  before(async () => {
    // Every bucket (address, consumer) allows a burst of 3; /open is public, so anonymous clients spend the address's.
    stack = await startAuthStack({
      admin: { token: ADMIN_TOKEN },
      auth: { public_paths: ['/open'] },
      rateLimit: { enabled: true, requests_per_minute: 1, burst_size: 3 },
    });
  });
  after(async () => {
    await stack?.close();
  });

  test("a valid key's first request is limited by its own bucket, not by the address's anonymous traffic", async () => {
    const keys = [await createKey(stack, 'billing'), await createKey(stack, 'reports')];
    // Anonymous requests from the same address empty its bucket.
    for (let i = 0; i < 3; i++) assert.equal((await stack.client.request(`${stack.url}/open`)).status, 200, `anonymous ${i + 1}`);
    assert.equal((await stack.client.request(`${stack.url}/open`)).status, 429, 'the address is over its limit');
    // Each key has its full burst of its own.
    for (const key of keys) {
      for (let i = 0; i < 3; i++) assert.equal(await withKey(stack, key), 200, `key request ${i + 1}`);
      assert.equal(await withKey(stack, key), 429, "the key's own limit");
    }
  });
});
