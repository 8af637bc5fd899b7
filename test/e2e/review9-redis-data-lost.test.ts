// Redis loses its data under a running gateway: FLUSHALL, or a restart without persistence. The revocations went with
// it, and a running gateway never wrote them again: a logged-out access token, and every token of a user who logged out
// of every session, was accepted again until it expired (15 minutes by default), although the user store's change log
// still held every one of those revocations (a gateway started then wrote them at its start; the running ones did
// not). The change poller now asks Redis once a second whether a marker it wrote is still there, and when it is not
// writes the window's revocations again. The buckets start full (documented) and nothing crashes or hangs.
// Our own redis-server on a free port; never the shared one on 6379.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { bearer, uniqueEmail, type SessionBody } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { startRedisErrorStack, type RedisErrorStack } from '../helpers/redis-error-stack.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

async function postJson(stack: RedisErrorStack, path: string, body: unknown, headers: Record<string, string> = {}) {
  return stack.client.request(`${stack.gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function me(stack: RedisErrorStack, token: string): Promise<number> {
  return (await stack.client.request(`${stack.gw.url}/me`, { headers: bearer(token) })).status;
}

/** A logged-out token (single session) and the tokens of a user logged out everywhere, all refused. */
async function revokedTokens(stack: RedisErrorStack): Promise<string[]> {
  const single = stack.account;
  const out = await postJson(stack, '/auth/logout', { refresh_token: single.refresh_token }, bearer(single.access_token));
  assert.equal(out.status, 200, out.text);
  const email = uniqueEmail('everywhere');
  const password = 'Pw-everywhere-1234';
  const first = (await postJson(stack, '/auth/register', { email, password })).json<SessionBody>();
  const second = (await postJson(stack, '/auth/login', { email, password })).json<SessionBody>();
  const all = await postJson(stack, '/auth/logout', { all_sessions: true }, bearer(second.access_token));
  assert.equal(all.status, 200, all.text);
  const tokens = [single.access_token, first.access_token, second.access_token];
  for (const token of tokens) assert.equal(await me(stack, token), 401, 'revoked before the loss');
  return tokens;
}

async function assertRefusedAgain(stack: RedisErrorStack, tokens: readonly string[], what: string): Promise<void> {
  // The poller asks once a second; a few seconds allow for a loaded machine.
  await waitFor(`every revoked token refused again after ${what}`, async () => {
    for (const token of tokens) if ((await me(stack, token)) !== 401) return false;
    return true;
  }, 6_000, 100);
}

test('revocations lost with Redis (FLUSHALL, a restart without persistence) are written again by the running gateway', { skip }, async () => {
  const stack = await startRedisErrorStack('data-lost');
  const tokens = await revokedTokens(stack);
  // The poller (1/s) writes each new change of the log once more, as it reads it: let it read these first, or its
  // first read of them after the FLUSHALL would put them back and the loss would go unseen.
  await new Promise((r) => setTimeout(r, 2_500));
  const lostLines = () => stack.gw.logs.filter((l) => l.msg === 'Revocations Lost').length;

  await stack.admin.sendCommand(['FLUSHALL']);
  await assertRefusedAgain(stack, tokens, 'FLUSHALL');
  assert.equal(lostLines(), 1, 'the loss is logged once');

  await stack.restart();
  await stack.untilReady(200, 'ready on the restarted, empty Redis');
  await assertRefusedAgain(stack, tokens, 'a restart without persistence');
  assert.equal(lostLines(), 2);

  // The rest is served as before: a fresh login, a new token, the limiters counting in the new Redis.
  const login = await postJson(stack, '/auth/login', { email: stack.account.email, password: stack.account.password });
  assert.equal(login.status, 200, login.text);
  const fresh = login.json<SessionBody>();
  const seen = await stack.observe();
  assert.equal(seen.proxied, 200);
  assert.match(String(seen.proxiedRemaining), /^\d+$/);
  assert.equal(await me(stack, fresh.access_token), 200, 'a token issued after the loss is accepted');
  for (const token of tokens) assert.equal(await me(stack, token), 401);
});
