// A login, registration or password change waits for its hash at most middleware.auth.argon2.timeout, its wait for
// a hashing slot included: then 503 password_hasher_busy with Retry-After. The hashing process runs at nice 19, so a
// host whose CPU is saturated starves it first, and logins used to wait for as long as the host stayed saturated
// (203 s measured at load 15) instead of getting an answer they could retry. A paused hashing process (SIGSTOP)
// stands in for a starved one here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashChildren, newHashChild } from '../helpers/hash-children.js';
import { FAST_ARGON2, register, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';

const TIMEOUT_MS = 1_000;

/** POSTs `body` to `path`; the answer with how long it took, or a throw after 15 s (the old wait had no end). */
async function timedPost(stack: AuthStack, path: string, body: unknown, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: (await res.json()) as { error?: string; code?: string }, ms: performance.now() - started };
}

test('a starved hashing process: logins (known and unknown email), registrations and admin password changes get 503 at the timeout; served again once it runs', async () => {
  const before = hashChildren();
  const stack = await startAuthStack({
    auth: { argon2: { ...FAST_ARGON2, timeout: `${TIMEOUT_MS}ms` } },
    admin: { token: ADMIN_TOKEN },
  });
  const child = { pid: 0 };
  try {
    const user = await register(stack); // starts the hashing process
    child.pid = newHashChild(before);
    process.kill(child.pid, 'SIGSTOP');
    // More calls than hashing slots: some run (stuck in the paused process), the others wait for a slot.
    const calls = await Promise.all([
      ...Array.from({ length: 4 }, () => timedPost(stack, '/auth/login', { email: user.email, password: user.password })),
      timedPost(stack, '/auth/login', { email: uniqueEmail('nobody'), password: 'Whatever-pw-1' }),
      timedPost(stack, '/auth/register', { email: uniqueEmail('late'), password: 'Starved-pw-1' }),
    ]);
    for (const call of calls) {
      assert.equal(call.status, 503, JSON.stringify(call));
      assert.equal(call.json.code, 'password_hasher_busy');
      assert.equal(call.retryAfter, '1');
      assert.ok(call.ms >= TIMEOUT_MS - 50, `answered at the timeout, not before (${Math.round(call.ms)} ms)`);
    }
    const created = await adminApi(stack.client, stack.gw.adminUrl!).post('/admin/users', { email: uniqueEmail('admin'), password: 'Admin-made-pw-1' });
    assert.equal(created.status, 503, created.text);
    assert.equal((created.json() as { code: string }).code, 'password_hasher_busy');

    process.kill(child.pid, 'SIGCONT');
    // The stuck hashes finish and give their slots back: the right password logs in again.
    const after = await timedPost(stack, '/auth/login', { email: user.email, password: user.password });
    assert.equal(after.status, 200, JSON.stringify(after));
    assert.equal((await timedPost(stack, '/auth/login', { email: user.email, password: 'wrong-password-1' })).status, 401);
  } finally {
    if (child.pid !== 0) process.kill(child.pid, 'SIGCONT');
    await stack.close();
  }
});
