// "Log out everywhere" across gateways whose clocks differ. Two gateway processes share PostgreSQL and Redis (README
// "Scaling out"); B runs with its wall clock 3 s ahead (test/helpers/clock-offset-import.mjs, loaded through
// NODE_OPTIONS: the whole process, not a hook of the gateway's). Revocations used to be judged by comparing the
// token's issue time (the issuing host's clock) with the log-out's time (the revoking host's clock):
// - a token B issued just before a log-out everywhere on A carried a later time than the log-out and stayed accepted
//   for its whole lifetime (the session the user wanted dead lived on);
// - a login on A just after a log-out everywhere on B carried an earlier time than it and was refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { GatewayProcess } from '../helpers/gateway.js';
import { adminApi, ADMIN_TOKEN } from '../helpers/identity.js';
import { sharedStoresHooks } from '../helpers/shared-stores.js';
import { bearer, login, register, SHARED_JWT_SECRET } from './ratelimit-helpers.js';

const CLOCK_OFFSET_MS = 3_000; // within the 5 s clock tolerance, so each gateway accepts the other's tokens

const stores = await sharedStoresHooks('skew', { extra: { admin: { token: ADMIN_TOKEN } } });
const { domain, skip, client, status } = stores;
let a: GatewayProcess | undefined;
let b: GatewayProcess | undefined;

before(async () => {
  if (skip) return;
  a = await stores.spawn();
  b = await stores.spawn({ clockOffsetMs: CLOCK_OFFSET_MS });
});

test('B runs 3 s ahead of A', { skip }, async () => {
  // The premise: B's tokens carry B's clock. Checked on its iat claim, so the tests below are about skew.
  const user = await register(client, a!.url, `u-premise@${domain}`);
  const onB = await login(client, b!.url, user.email);
  const iat = (t: string) => (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat;
  assert.ok(iat(onB.accessToken) - iat(user.accessToken) >= 2, 'B issues tokens with its clock ahead');
});

test('a token issued by a host whose clock is ahead, just before a log-out everywhere, is refused after it', { skip }, async () => {
  const user = await register(client, a!.url, `u-ahead@${domain}`);
  const early = await login(client, b!.url, user.email);
  assert.equal(await status(a!, early.accessToken), 200, 'accepted before the log-out');
  const out = await client.postJson(`${a!.url}/auth/logout`, { all_sessions: true }, bearer(user));
  assert.equal(out.status, 200, out.text);
  assert.equal(await status(a!, early.accessToken), 401, 'refused on A after the log-out everywhere');
  assert.equal(await status(b!, early.accessToken), 401, 'refused on B after the log-out everywhere');
});

test('the admin API\'s logout refuses a token issued just before it by a host whose clock is ahead', { skip }, async () => {
  const user = await register(client, a!.url, `u-admin@${domain}`);
  const early = await login(client, b!.url, user.email);
  const res = await adminApi(client, `http://127.0.0.1:${a!.adminPort!}`).post(`/admin/users/${user.userId}/logout`);
  assert.equal(res.status, 200, res.text);
  assert.equal(await status(a!, early.accessToken), 401, 'refused after the operator logged the user out');
});

test('a login just after a log-out everywhere made on a host whose clock is ahead is accepted', { skip }, async () => {
  const user = await register(client, a!.url, `u-behind@${domain}`);
  const onB = await login(client, b!.url, user.email);
  const out = await client.postJson(`${b!.url}/auth/logout`, { all_sessions: true }, bearer(onB));
  assert.equal(out.status, 200, out.text);
  assert.equal(await status(a!, user.accessToken), 401, 'the earlier token is refused');
  const later = await login(client, a!.url, user.email);
  assert.equal(await status(a!, later.accessToken), 200, 'the login after the log-out works on A');
  assert.equal(await status(b!, later.accessToken), 200, 'and on B');
});

test('tokens without a generation (issued before the upgrade) are still judged by their issue time', { skip }, async () => {
  // What a gateway of the previous version issued: iat_ms, no `gen`. Signed here with the gateways' shared secret.
  const user = await register(client, a!.url, `u-legacy@${domain}`);
  const legacy = async (issuedAtMs: number): Promise<string> => {
    const iat = Math.floor(issuedAtMs / 1000);
    return new SignJWT({ email: user.email, iat_ms: issuedAtMs })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setSubject(user.userId)
      .setIssuer('portcullis')
      .setAudience('portcullis')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 600)
      .setJti(randomUUID())
      .sign(new TextEncoder().encode(SHARED_JWT_SECRET));
  };
  const before = await legacy(Date.now() - 2000);
  assert.equal(await status(a!, before), 200, 'accepted before the log-out');
  const out = await client.postJson(`${a!.url}/auth/logout`, { all_sessions: true }, bearer(user));
  assert.equal(out.status, 200, out.text);
  assert.equal(await status(a!, before), 401, 'issued before the log-out: refused');
  assert.equal(await status(b!, before), 401, 'on B too');
  const after = await legacy(Date.now() + 1000);
  assert.equal(await status(a!, after), 200, 'issued after the log-out: accepted');
});
