// A login flood meets a bounded argon2 queue: the excess gets 503 + Retry-After at once, proxying stays fast.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSafeError, bearer, register, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import { createClient } from '../helpers/http.js';

describe('argon2 queue_limit under a login flood', () => {
  let stack: AuthStack;
  before(async () => {
    // A hash that takes a while, one at a time, and a queue of 4: 60 logins at once must overflow it.
    stack = await startAuthStack({ auth: { argon2: { memory_kib: 8192, iterations: 2, parallelism: 1, queue_limit: 4 } } });
  });
  after(() => stack.close());

  test('excess logins get 503 with Retry-After without waiting; a proxied request with a token stays fast', async () => {
    const user = await register(stack, uniqueEmail('flood'));
    const flood = createClient({ connections: 128 });
    const t0 = performance.now();
    assert.equal((await stack.client.request(`${stack.url}/warm`, { headers: bearer(user.access_token) })).status, 200);
    const warm = performance.now() - t0;
    try {
      const started = performance.now();
      const logins = Array.from({ length: 60 }, (_, i) =>
        flood.postJson(`${stack.url}/auth/login`, { email: user.email, password: i % 2 === 0 ? user.password : 'wrong-password' }),
      );
      // Proxied requests during the flood: they never touch argon2.
      const proxied: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const res = await stack.client.request(`${stack.url}/p/${i}`, { headers: bearer(user.access_token) });
        assert.equal(res.status, 200);
        proxied.push(performance.now() - t);
      }
      const answers = await Promise.all(logins);
      const elapsed = performance.now() - started;
      const statuses = answers.map((r) => r.status);
      const busy = answers.filter((r) => r.status === 503);
      assert.ok(busy.length > 0, `no 503 among ${statuses.join(',')}`);
      assert.ok(statuses.every((s) => s === 200 || s === 401 || s === 503), statuses.join(','));
      for (const r of busy) {
        assertSafeError(r, 503, [user.password]);
        assert.equal(r.headers['retry-after'], '1');
      }
      // At most 1 running + 4 queued per moment were hashed; the rest did not wait in line.
      assert.ok(answers.length - busy.length >= 5, `${answers.length - busy.length} logins were served`);
      const worst = Math.max(...proxied);
      assert.ok(worst < 2_000, `proxied requests during the flood: ${proxied.map(Math.round).join(",")} ms (flood took ${Math.round(elapsed)} ms, ${busy.length} busy, warm-up ${Math.round(warm)} ms)`);
      // The queue drains: a login afterwards works.
      const later = await stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
      assert.equal(later.status, 200, later.text);
    } finally {
      await flood.close();
    }
  });
});
