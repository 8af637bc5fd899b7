// How long a user's revocation is remembered. Two gateway processes share PostgreSQL and Redis; B's wall clock runs
// 4 s ahead (within the 5 s tolerance, so A accepts B's tokens; test/helpers/clock-offset-import.mjs). Access tokens
// live 1 s here. A token B issued just before a log-out everywhere on A carries an issue time 4 s ahead, so A accepts
// it until about 4 s after a token A issued at the same moment. Since the token generation, such a token is refused
// by the revocation (it was accepted for its whole lifetime before), but only while the revocation is remembered:
// for the access-token lifetime plus the tolerance once, it was forgotten while the token was still accepted, and the
// killed session worked again at the end of its life.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayProcess } from '../helpers/gateway.js';
import { sharedStoresHooks } from '../helpers/shared-stores.js';
import { bearer, login, register } from './ratelimit-helpers.js';

const CLOCK_OFFSET_MS = 4_000;

const stores = await sharedStoresHooks('genttl', { jwt: { access_token_expiration: '1s' } });
const { domain, skip, client, status } = stores;
let a: GatewayProcess | undefined;
let b: GatewayProcess | undefined;

before(async () => {
  if (skip) return;
  a = await stores.spawn();
  b = await stores.spawn({ clockOffsetMs: CLOCK_OFFSET_MS });
});

test('a token issued just before a log-out everywhere by a host whose clock is ahead stays refused until it expires', { skip }, async () => {
  const user = await register(client, a!.url, `u-ttl@${domain}`);
  const early = await login(client, b!.url, user.email);
  const out = await client.postJson(`${a!.url}/auth/logout`, { all_sessions: true }, bearer(user));
  assert.equal(out.status, 200, out.text);
  const revokedAt = Date.now();
  assert.equal(await status(a!, early.accessToken), 401, 'refused after the log-out everywhere');
  // The revocation was remembered for 1 s + 5 s; A accepts B's token until about 4 s + 1 s + 5 s after its issue
  // (at least 9 s, `iat` being whole seconds). In between, refused only if the revocation is still remembered.
  await new Promise((r) => setTimeout(r, revokedAt + 7_500 - Date.now()));
  const late = await status(a!, early.accessToken);
  const elapsed = Date.now() - revokedAt;
  assert.ok(elapsed < 8_800, `checked ${elapsed} ms after the log-out: too late to tell (machine too slow)`);
  assert.equal(late, 401, 'still refused at the end of its life');
});
