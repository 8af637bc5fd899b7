// A revocation is remembered only as long as a token of the configured lifetime can be accepted
// (jwt.access_token_expiration + 5 s). After an operator lowers that lifetime and restarts, the access tokens issued
// before the restart still carried their old, longer exp: they were accepted until it, so once a logout everywhere,
// a disable or a password reset made after the restart was forgotten (the shorter window), the user's old token
// worked again, for a disabled user too. A token is now accepted for at most the configured lifetime after its issue.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_ARGON2, memoryStoreGateways, register } from '../helpers/auth-gateway.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { createClient } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN } from '../helpers/identity.js';

const client = createClient();
let backend: TestBackend | undefined;
after(async () => {
  await client.close();
  await backend?.stop();
});
const start = memoryStoreGateways(() => ({}), () => backend!.port);
const authConfig = (ttl: string) => ({
  jwt: { secret: 'portcullis-e2e-secret-0123456789-abcdefghij', access_token_expiration: ttl },
  middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
});

test('after access_token_expiration is lowered, a revoked older token stays refused once the revocation is forgotten', async () => {
  backend = await startBackend('echo');
  const first = await start(authConfig('1h'));
  const loggedOut = await register({ client, url: first.url });
  const disabled = await register({ client, url: first.url });
  await first.gateway.close();

  // Restarted with a 2 s lifetime: revocations are kept for 2 s + 5 s of clock tolerance.
  const gw = await start({ ...authConfig('2s'), admin: { token: ADMIN_TOKEN, listen_port: 0 } });
  const status = async (token: string) =>
    (await client.request(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status;
  const out = await client.request(`${gw.url}/auth/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${loggedOut.access_token}` },
    body: JSON.stringify({ all_sessions: true }),
  });
  assert.equal(out.status, 200, out.text);
  assert.equal((await adminApi(client, gw.adminUrl!).post(`/admin/users/${disabled.user_id}/disable`)).status, 200);
  const revokedAt = Date.now();

  // Past the time the revocations are remembered (7 s), the old tokens (exp in an hour) must still be refused.
  const until = revokedAt + 7_000 + 1_500;
  while (Date.now() < until) {
    assert.equal(await status(loggedOut.access_token), 401, 'a token of a user who logged out everywhere');
    assert.equal(await status(disabled.access_token), 401, "a disabled user's token");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.equal(await status(loggedOut.access_token), 401, 'a token of a user who logged out everywhere');
  assert.equal(await status(disabled.access_token), 401, "a disabled user's token");
});
