// Refresh tokens rotate and each rotation gave the session another jwt.refresh_token_expiration: a client (or a thief
// holding the latest token) refreshing on time kept a session forever, where Keycloak's SSO Session Max and Auth0's
// absolute lifetime end it. jwt.refresh_token_absolute_expiration (default 30 days) ends a session that long after
// its login, whatever its refreshes; a new login starts a new one. On the default SQLite store (the PostgreSQL
// adapter is held to the same rule by the user-store contract suite).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { authConfig, login, register, runId } from './ratelimit-helpers.js';

test('a session ends refresh_token_absolute_expiration after its login, however often it refreshed', async () => {
  const client = createClient();
  after(() => client.close());
  const gw = await startInProcess({
    jwt: { refresh_token_expiration: '1h', refresh_token_absolute_expiration: '6s' },
    load_balancing: { upstreams: upstreams([1]) },
    middleware: { auth: authConfig() },
  });
  after(() => gw.close());
  const email = `absolute-${runId()}@example.com`;
  const registered = await register(client, gw.url, email);
  let token = registered.refreshToken;
  const started = Date.now(); // the session started before this (its hashing may be slow on a loaded machine)
  // Its access tokens end with it too (the access lifetime, 15 minutes by default, is longer).
  const expOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
  assert.ok(expOf(registered.accessToken) * 1000 <= started + 6_000, 'the access token ends with the session');
  const refresh = () => client.postJson(`${gw.url}/auth/refresh`, { refresh_token: token });
  // Refreshing well within the sliding lifetime (1 h): each refresh would have given the session another hour.
  for (let i = 0; i < 2; i++) {
    await sleep(1_000);
    const res = await refresh();
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text) as { refresh_token: string; access_token: string; expires_in: number };
    token = body.refresh_token;
    assert.ok(expOf(body.access_token) * 1000 <= started + 6_000 && body.expires_in <= 6, `expires_in ${body.expires_in}`);
  }
  await sleep(Math.max(0, started + 6_500 - Date.now())); // past 6 s from the login
  const ended = await refresh();
  assert.equal(ended.status, 401, ended.text);
  assert.equal((JSON.parse(ended.text) as { code: string }).code, 'invalid_refresh_token');
  // A new login is a new session.
  token = (await login(client, gw.url, email)).refreshToken;
  assert.equal((await refresh()).status, 200);
});
