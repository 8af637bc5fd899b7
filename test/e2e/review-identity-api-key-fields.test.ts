// POST /admin/api-keys refuses a field it does not read (400 invalid_body, no key made). Before, an unknown field was
// dropped: `{"name":"svc","expires_at":"2027-01-01T00:00:00Z"}` (the name the answer itself uses), `expiresIn` or
// Kong's `ttl` each made a key that never expires, 201, without a word.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startInProcess, tempDataDir, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();

describe('POST /admin/api-keys and fields it does not read', () => {
  const dataDir = tempDataDir();
  let gw: InProcessGateway;

  before(async () => {
    gw = await startInProcess(
      {
        load_balancing: { upstreams: upstreams([1]) },
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
        admin: { token: ADMIN_TOKEN },
      },
      dataDir,
    );
  });
  after(async () => {
    await gw?.close();
    await client.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('an unknown field is 400 invalid_body, and no key is made', async () => {
    const admin = adminApi(client, gw.adminUrl!);
    for (const [body, field] of [
      [{ name: 'svc', expires_at: '2027-01-01T00:00:00Z' }, 'expires_at'],
      [{ name: 'svc', expiresIn: '1d' }, 'expiresIn'],
      [{ name: 'svc', ttl: 3600 }, 'ttl'],
      [{ name: 'svc', expires_in: '1d', note: 'x' }, 'note'],
    ] as const) {
      const res = await admin.post('/admin/api-keys', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      const error = res.json<{ code: string; details: { field: string; message: string }[] }>();
      assert.equal(error.code, 'invalid_body');
      // The field is named (a plain name: see review-identity-admin-body-fields), its value never.
      assert.deepEqual(error.details, [{ field, message: 'is not a field of this body (it takes only name and expires_in)' }]);
    }
    const listed = await admin.get('/admin/api-keys');
    assert.deepEqual(listed.json<{ api_keys: unknown[] }>().api_keys, []);
  });

  test('the fields it reads still make a key', async () => {
    const admin = adminApi(client, gw.adminUrl!);
    const res = await admin.post('/admin/api-keys', { name: 'svc', expires_in: '1d' });
    assert.equal(res.status, 201, res.text);
    assert.notEqual(res.json<{ expires_at: string | null }>().expires_at, null);
    const notObject = await admin.post('/admin/api-keys', ['svc']);
    assert.deepEqual(notObject.json<{ details: unknown }>().details, [{ field: 'body', message: 'must be a JSON object' }]);
  });
});
