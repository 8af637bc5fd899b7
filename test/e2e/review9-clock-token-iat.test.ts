// Access tokens stamped by a clock that ran ahead, checked once it has been stepped back (NTP correcting a VM's
// clock, a laptop resumed, a snapshot restored; or a gateway whose clock is behind the one that issued them). README:
// "Token verification still allows 5 s of clock difference for `exp` and `iat`"; but only `exp` was checked (jose
// checks `iat` against a maxTokenAge only), so a token issued 10 minutes in this clock's future was accepted for its
// lifetime plus the 10 minutes, and a token that had been verified before the step stayed accepted from the cache of
// verified tokens too. Now either is refused (401 invalid_token) until the clock reaches its iat less the 5 s; the
// client's refresh token still works and gets a token of the corrected clock. The gateway runs with
// test/helpers/clock-offset-import.mjs and a clock file (clock-step.ts) that the tests step.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startClockedGateway, type ClockedGateway } from '../helpers/clock-gateway.js';
import type { SteppedClock } from '../helpers/clock-step.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const AHEAD_MS = 10 * 60_000;
const client = createClient();
let stack: ClockedGateway | undefined;
let gw: GatewayProcess | undefined;
let clock: SteppedClock | undefined;
let n = 0;

before(async () => {
  stack = await startClockedGateway('echo', {
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  });
  ({ gw, clock } = stack);
});

after(async () => {
  await client.close();
  await stack?.stop();
});

async function session(): Promise<{ access: string; refresh: string }> {
  const res = await client.postJson(`${gw!.url}/auth/register`, { email: `u-iat-${n++}-${process.pid}@clock.example`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
  const body = res.json<{ access_token: string; refresh_token: string }>();
  return { access: body.access_token, refresh: body.refresh_token };
}

async function status(token: string): Promise<{ status: number; challenge: string | undefined }> {
  const res = await client.request(`${gw!.url}/x`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, challenge: res.headers['www-authenticate'] as string | undefined };
}

test('a token issued while the clock ran 10 minutes ahead is refused once the clock is stepped back, cached or not', async () => {
  await clock!.step(AHEAD_MS);
  const seen = await session();
  const unseen = await session();
  assert.equal((await status(seen.access)).status, 200, 'accepted while the clock is ahead (and so cached as verified)');
  await clock!.step(0);
  const fromCache = await status(seen.access);
  assert.equal(fromCache.status, 401, 'the token verified before the step is refused after it');
  assert.match(fromCache.challenge ?? '', /invalid_token/);
  assert.equal((await status(unseen.access)).status, 401, 'a token never seen before the step is refused');
  // The client's way back: its refresh token (stored with a wall-clock expiry 30 days off) gets a current token.
  const res = await client.postJson(`${gw!.url}/auth/refresh`, { refresh_token: unseen.refresh });
  assert.equal(res.status, 200, res.text);
  assert.equal((await status(res.json<{ access_token: string }>().access_token)).status, 200, 'the refreshed token works');
});

test('a token issued by a clock 3 s ahead (within the 5 s tolerance) is accepted after the step back', async () => {
  await clock!.step(3_000);
  const ahead = await session();
  await clock!.step(0);
  assert.equal((await status(ahead.access)).status, 200);
});
