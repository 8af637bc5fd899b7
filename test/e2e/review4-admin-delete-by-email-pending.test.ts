// A delete addressed by email while Redis is down. The 202's warning says "repeating this request retries it now", and
// the README says a repeated delete "writes the revocation again and answers 404 only once it is in place, 202 while
// it is still pending". Repeated by email, the request found no user (the email went with the row) and answered 404
// at once, without touching the revocation: an operator read "done" while the user's access tokens still worked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAuthStack, register, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js';
import { waitFor } from '../helpers/prometheus.js';
import { REDIS_URL, runId } from './ratelimit-helpers.js';

let forwarder: TcpForwarder;
let stack: AuthStack;
let admin: ReturnType<typeof adminApi>;

before(async () => {
  const redis = new URL(REDIS_URL);
  forwarder = await startTcpForwarder(redis.hostname, Number(redis.port || 6379));
  stack = await startAuthStack({
    admin: { token: ADMIN_TOKEN },
    redis: { url: `redis://127.0.0.1:${forwarder.port}`, key_prefix: `portcullis-test:r4-delete-email:${runId()}:` },
  });
  admin = adminApi(stack.client, stack.gw.adminUrl!);
  await waitFor('the gateway to reach redis', async () => (await admin.get('/ready')).status === 200, 10_000);
});
after(async () => {
  await stack?.close();
  await forwarder?.close();
});

test('a delete by email repeated while its revocation is pending answers 202 again, not 404', async () => {
  const user = await register(stack);
  await forwarder.cut();
  try {
    const first = await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json<{ user_id: string }>().user_id, user.user_id);
    const again = await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`);
    assert.equal(again.status, 202, `the revocation is still pending: ${again.text}`);
    assert.equal(again.json<{ revocation: string }>().revocation, 'pending');
    // By id it is the same.
    assert.equal((await admin.delete(`/admin/users/${user.user_id}`)).status, 202);
  } finally {
    await forwarder.restore();
  }
  // Once Redis answers, the retry writes the revocation and says the user is gone.
  await waitFor('the repeated delete to answer 404', async () => (await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`)).status === 404, 10_000);
});

test('an email registered again after a pending delete names the new user, not the deleted one', async () => {
  const user = await register(stack);
  await forwarder.cut();
  try {
    assert.equal((await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`)).status, 202);
    const again = await admin.post('/admin/users', { email: user.email, password: 'correct horse battery staple' });
    assert.equal(again.status, 201, again.text);
    const newId = again.json<{ user_id: string }>().user_id;
    const deleted = await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`);
    assert.equal(deleted.status, 202, deleted.text);
    assert.equal(deleted.json<{ user_id: string }>().user_id, newId);
    assert.equal((await admin.get(`/admin/users/${newId}`)).status, 404, 'the new user is deleted');
  } finally {
    await forwarder.restore();
  }
});

test('a delete by email that was done answers 404 when repeated', async () => {
  await waitFor('redis to answer again', async () => (await admin.get('/ready')).status === 200, 10_000);
  const user = await register(stack);
  assert.equal((await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`)).status, 204);
  assert.equal((await admin.delete(`/admin/users/${encodeURIComponent(user.email)}`)).status, 404);
});
