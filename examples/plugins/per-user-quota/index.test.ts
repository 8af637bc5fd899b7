// per-user-quota through the test kit: counted per user per day, 429 with its own message past the limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestGateway, type TestGateway } from 'portcullis/testing';

const plugin = new URL('./index.ts', import.meta.url).pathname;

describe('per-user-quota', () => {
  let gateway: TestGateway;
  const token = async (email: string): Promise<string> => {
    const res = await gateway.inject({ method: 'POST', url: '/auth/register', body: { email, password: 'SecurePass123!' } });
    assert.equal(res.status, 201);
    return res.json().access_token;
  };

  before(async () => {
    gateway = await createTestGateway({
      jwt: { secret: 'quota-example-secret-0123456789-abcdefgh' },
      middleware: {
        auth: { enabled: true, public_paths: ['/public/*'], argon2: { memory_kib: 1024, iterations: 1, parallelism: 1 } },
        plugins: ['quota'],
      },
      plugins: [{ name: 'quota', module: plugin, config: { daily_limit: 3, message: 'You have used today\'s 3 requests' } }],
    });
  });
  after(() => gateway.close());

  test('each user gets daily_limit requests, with X-Quota-Remaining counting down, then a 429 of its own', async () => {
    const alice = { authorization: `Bearer ${await token('alice@example.com')}` };
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const res = await gateway.inject({ url: '/orders', headers: alice });
      assert.equal(res.status, 200);
      remaining.push(res.headers['x-quota-remaining']);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const refused = await gateway.inject({ url: '/orders', headers: alice });
    assert.equal(refused.status, 429);
    assert.equal(refused.json().error, 'You have used today\'s 3 requests');
    assert.equal(refused.json().request_id, refused.headers['x-request-id']);
    assert.equal(refused.headers['x-quota-remaining'], '0');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 86_400, `retry-after ${retryAfter}`);

    // Another user has a quota of their own.
    const bob = { authorization: `Bearer ${await token('bob@example.com')}` };
    const first = await gateway.inject({ url: '/orders', headers: bob });
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-quota-remaining'], '2');
  });

  test('a caller who is neither a user nor a consumer is not counted', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await gateway.inject({ url: '/public/page' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-quota-remaining'], undefined);
    }
  });

  test('a bad daily_limit is a config error naming the key', async () => {
    await assert.rejects(
      createTestGateway({ plugins: [{ name: 'quota', module: plugin, config: { daily_limit: 0 } }], middleware: { plugins: ['quota'] } }),
      { message: 'plugins[0].config: daily_limit must be a positive integer' },
    );
  });
});
