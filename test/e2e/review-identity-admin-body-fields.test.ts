// Every body the admin API parses refuses a field it does not read: 400 invalid_body, the field named, its value never
// echoed, nothing done. Before, POST /admin/users and POST /admin/users/{id}/password dropped an unknown field (as
// POST /admin/api-keys did until d874701): `{"email","password","disabled":true}` made an enabled user, and a misspelt
// `{"new_password": …}` was answered "password: is required" at best, 201 without a word at worst. The public
// /auth/* bodies share the register rules but stay lenient: clients may send extra fields there.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminStackHooks } from '../helpers/identity.js';
import { assertSafeError, uniqueEmail } from '../helpers/auth-gateway.js';

interface InvalidBody {
  code: string;
  details: { field: string; message: string }[];
}

describe('admin API bodies and fields they do not read', () => {
  const hooks = adminStackHooks();
  const admin = () => hooks.admin();

  test('POST /admin/users: an unknown field is 400 invalid_body naming it, the password never echoed, no user made', async () => {
    const email = uniqueEmail('strict');
    const secret = 'Secret-Value-123';
    for (const [extra, field] of [
      [{ disabled: true }, 'disabled'],
      [{ passwd: secret }, 'passwd'],
      [{ role: 'admin', password_confirmation: secret }, 'role'],
    ] as const) {
      const res = await admin().post('/admin/users', { email, password: secret, ...extra });
      const error = assertSafeError(res, 400, [secret]) as unknown as InvalidBody;
      assert.equal(error.code, 'invalid_body');
      assert.deepEqual(error.details, [{ field, message: 'is not a field of this body (it takes only email and password)' }]);
    }
    const listed = await admin().get(`/admin/users?email=${encodeURIComponent(email)}`);
    assert.deepEqual(listed.json<{ users: unknown[] }>().users, []);
  });

  test('POST /admin/users/{id}/password: an unknown field is 400 naming it, and the password is not changed', async () => {
    const email = uniqueEmail('pw');
    const created = await admin().post('/admin/users', { email, password: 'First-Password-1' });
    assert.equal(created.status, 201, created.text);
    const id = created.json<{ user_id: string }>().user_id;
    const secret = 'Second-Password-2';
    for (const [body, field] of [
      [{ password: secret, email: 'other@example.com' }, 'email'],
      [{ new_password: secret }, 'new_password'],
    ] as const) {
      const res = await admin().post(`/admin/users/${id}/password`, body);
      const error = assertSafeError(res, 400, [secret]) as unknown as InvalidBody;
      assert.equal(error.code, 'invalid_body');
      assert.deepEqual(error.details, [{ field, message: 'is not a field of this body (it takes only password)' }]);
    }
    const login = await hooks.stack.client.postJson(`${hooks.stack.url}/auth/login`, { email, password: 'First-Password-1' });
    assert.equal(login.status, 200, `the old password still works: ${login.text}`);
  });

  test('POST /admin/api-keys names the unknown field the same way', async () => {
    const res = await admin().post('/admin/api-keys', { name: 'svc', ttl: 3600 });
    const error = assertSafeError(res, 400) as unknown as InvalidBody;
    assert.deepEqual(error.details, [{ field: 'ttl', message: 'is not a field of this body (it takes only name and expires_in)' }]);
  });

  test('a field name that is no plain name is not echoed: the detail names the body', async () => {
    const odd = 'Secret <script> with spaces';
    const res = await admin().post('/admin/users', { email: uniqueEmail('odd'), password: 'Password-123', [odd]: 1 });
    const error = assertSafeError(res, 400, [odd]) as unknown as InvalidBody;
    assert.deepEqual(error.details, [{ field: 'body', message: 'must hold only email and password' }]);
  });

  test('the fields each body reads still work, and /auth/register stays lenient', async () => {
    const email = uniqueEmail('ok');
    const created = await admin().post('/admin/users', { email, password: 'Password-123' });
    assert.equal(created.status, 201, created.text);
    const id = created.json<{ user_id: string }>().user_id;
    const set = await admin().post(`/admin/users/${id}/password`, { password: 'Password-456' });
    assert.equal(set.status, 200, set.text);
    const notObject = await admin().post(`/admin/users/${id}/password`, ['Password-789']);
    assert.deepEqual(notObject.json<InvalidBody>().details, [{ field: 'body', message: 'must be a JSON object' }]);
    const registered = await hooks.stack.client.postJson(`${hooks.stack.url}/auth/register`, {
      email: uniqueEmail('public'),
      password: 'Password-123',
      newsletter: true,
    });
    assert.equal(registered.status, 201, registered.text);
  });
});
