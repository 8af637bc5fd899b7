// A login and a log-out everywhere in the same millisecond. The gateway runs with its wall clock standing still
// (test/helpers/clock-offset-import.mjs, PORTCULLIS_TEST_CLOCK_FROZEN=1, loaded through NODE_OPTIONS), so every token
// it issues and every revocation it writes carries the same time: the embedded default (SQLite, memory revocation
// store). Revocations refused every token issued at or before their time: a token issued before the log-out in its
// millisecond was rightly refused, but so was every login after it in that millisecond. The store made a login wait
// the millisecond out only when the log-out had revoked a session in it (max(revoked_at)); after a log-out of a user
// whose sessions were already gone (an operator's logout, or disable then enable), or after three waits, the login's
// first access token was refused for its whole lifetime. The token generation decides instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET, bearer, uniqueEmail } from '../helpers/auth-gateway.js';

const CLOCK_IMPORT = new URL('../helpers/clock-offset-import.mjs', import.meta.url).pathname;
const PASSWORD = 'correct horse battery';

const client = createClient();
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;

before(async () => {
  backend = await startBackend('echo');
  const options = `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_IMPORT}`.trim();
  gw = await spawnGateway(
    {
      jwt: { secret: TEST_SECRET },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false, auth: { enabled: false } } },
      admin: { token: ADMIN_TOKEN },
    },
    { env: { NODE_OPTIONS: options, PORTCULLIS_TEST_CLOCK_FROZEN: '1' } },
  );
});

after(async () => {
  await client.close();
  await gw?.cleanup();
  await backend?.stop();
});

async function status(token: string): Promise<number> {
  return (await client.request(`${gw!.url}/x`, { headers: bearer(token) })).status;
}

async function login(email: string): Promise<{ access_token: string; user_id: string }> {
  const res = await client.postJson(`${gw!.url}/auth/login`, { email, password: PASSWORD });
  assert.equal(res.status, 200, res.text);
  return res.json();
}

function iatMs(token: string): number {
  return (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iat_ms: number }).iat_ms;
}

test('a log-out everywhere refuses the tokens issued before it in its millisecond and accepts the logins after it', async () => {
  const email = uniqueEmail('same-ms');
  const registered = await client.postJson(`${gw!.url}/auth/register`, { email, password: PASSWORD });
  assert.equal(registered.status, 201, registered.text);
  const first = registered.json<{ access_token: string }>();
  const second = await login(email);
  assert.equal(iatMs(second.access_token), iatMs(first.access_token), 'the clock stands still');
  const out = await client.postJson(`${gw!.url}/auth/logout`, { all_sessions: true }, bearer(first.access_token));
  assert.equal(out.status, 200, out.text);
  assert.equal(await status(second.access_token), 401, 'issued before the log-out, in its millisecond: refused');
  const third = await login(email);
  assert.equal(iatMs(third.access_token), iatMs(first.access_token), 'issued in the same millisecond');
  assert.equal(await status(third.access_token), 200, 'issued after the log-out, in its millisecond: accepted');
});

test('an operator\'s logout of a user with no live session: the next login in its millisecond is accepted', async () => {
  const email = uniqueEmail('same-ms-admin');
  const registered = await client.postJson(`${gw!.url}/auth/register`, { email, password: PASSWORD });
  assert.equal(registered.status, 201, registered.text);
  const { access_token: early, refresh_token: refresh, user_id: userId } = registered.json<{
    access_token: string;
    refresh_token: string;
    user_id: string;
  }>();
  // The session goes first (a single-session logout), so the operator's logout revokes no session.
  const single = await client.postJson(`${gw!.url}/auth/logout`, { refresh_token: refresh });
  assert.equal(single.status, 200, single.text);
  const admin = adminApi(client, `http://127.0.0.1:${gw!.adminPort!}`);
  const res = await admin.post(`/admin/users/${userId}/logout`);
  assert.equal(res.status, 200, res.text);
  assert.equal(await status(early), 401, 'the token issued before it is refused');
  const later = await login(email);
  assert.equal(await status(later.access_token), 200, 'the login after it is accepted');
});
