// Redis restarted with a dataset to load answers `-LOADING Redis is loading the dataset in memory` to every command
// (PING included) until it has read it, for seconds on a large one; its connections are accepted meanwhile, so the
// gateway reconnects at once and meets the refusals instead of a refused connection. The README lists LOADING with
// the refusals that fail reads too; nothing tested it. Here, on a redis-server of our own made to load slowly
// (key-load-delay, events served every KiB), while it loads: /ready 503 naming redis; proxied routes let through
// uncounted (rate_limit.on_store_error allow); login, refresh and logout refused with 503 kv_unavailable and
// Retry-After (the auth API's deny); a token logged out before the restart refused with 503 (auth's deny), never
// served; the outage logged once per source and policy, with the server's code and never its words. Once loaded,
// everything is served again without a restart: the buckets and the revocation came back with the dataset (the
// logged-out token 401, its refresh token 401), and the limiter counts on from where it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { assertHealthy, assertQuietLogs, assertRefusing, startRedisErrorStack } from '../helpers/redis-error-stack.js';
import { assertSafeError, bearer, type SessionBody } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

/**
 * Keys written before the restart, and the server's delay per key loaded (µs): seconds of loading, spent sleeping, so
 * no core is burnt (measured on a loaded 2-core machine: 20,000 keys took 7.2 s, 30,000 took 9.5 s).
 */
const FILL_KEYS = 20_000;
const KEY_LOAD_DELAY_US = 150;
/** The server reads 1 KiB of its file between two looks at its clients (the default, 2 MiB, is the whole file). */
const SLOW_LOAD = ['--key-load-delay', String(KEY_LOAD_DELAY_US), '--loading-process-events-interval-bytes', '1024'];

test('Redis loading its dataset after a restart: each path its policy, nothing revoked served, recovered once loaded', { skip }, async () => {
  const stack = await startRedisErrorStack('loading');
  const { client, gw, account } = stack;
  const send = (...args: string[]) => stack.admin.sendCommand(args);
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    client.request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const loading = async () => String(await send('INFO', 'persistence')).includes('loading:1');

  // A second session, logged out: its access token is revoked in Redis, its refresh token in the user store.
  const loginRes = await post('/auth/login', { email: account.email, password: account.password });
  assert.equal(loginRes.status, 200, loginRes.text);
  const gone = loginRes.json<SessionBody>();
  const logoutRes = await post('/auth/logout', { refresh_token: gone.refresh_token }, bearer(gone.access_token));
  assert.equal(logoutRes.status, 200, logoutRes.text);
  assert.equal((await client.request(`${gw.url}/me`, { headers: bearer(gone.access_token) })).status, 401, 'logged out');
  const before = await stack.observe();
  assertHealthy(before, 'before');

  // The dataset, saved where the next server loads it from.
  await send('EVAL', "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'review11-fill:' .. i, 'x') end return 1", '0', String(FILL_KEYS));
  await send('SAVE');
  const failuresBefore = gw.logs.filter((l) => l.msg === 'KV Store Unavailable').length;
  assert.equal(failuresBefore, 0, 'no outage before the restart');

  const first = await stack.restart({ args: SLOW_LOAD, loading: true });
  assert.match(first, /^-LOADING /, 'the new server answers LOADING while it loads');
  // The gateway is connected again and meets the refusal: its /ready probe (an EVALSHA) reached this server.
  await waitFor(
    'the gateway to reach the loading server',
    async () => (await client.request(`${gw.adminUrl}/ready`)).status === 503 && /cmd=evalsha/.test(String(await send('CLIENT', 'LIST'))),
    5_000,
  );

  const seen = await stack.observe();
  const refresh = await post('/auth/refresh', { refresh_token: account.refresh_token });
  const revokedRefresh = await post('/auth/refresh', { refresh_token: gone.refresh_token });
  const logout = await post('/auth/logout', { refresh_token: account.refresh_token }, bearer(account.access_token));
  const revoked = await client.request(`${gw.url}/me`, { headers: bearer(gone.access_token) });
  assert.ok(await loading(), 'still loading after the checks (else they did not meet LOADING: raise FILL_KEYS)');

  assertRefusing(seen, 'LOADING', false);
  for (const [what, res] of [
    ['refresh', refresh],
    ['refresh with a logged-out refresh token', revokedRefresh],
    ['logout', logout],
    ['a logged-out access token', revoked],
  ] as const) {
    const body = assertSafeError(res, 503, [account.password, account.refresh_token, gone.refresh_token]);
    assert.equal(body.code, 'kv_unavailable', what);
    assert.match(String(res.headers['retry-after']), /^\d+$/, `${what}: Retry-After`);
    assert.doesNotMatch(res.text, /loading|dataset/i, `${what}: the server's words`);
  }

  // Loaded: served again without a restart, with what the dataset held.
  await waitFor('the server to finish loading', async () => !(await loading()), 15_000, 100);
  await stack.untilReady(200, '/ready 200 once loaded', 5_000);
  const after = await stack.observe();
  assertHealthy(after, 'once loaded');
  // One token a minute: the ~10 s since `before` may have refilled one. A bucket started anew would say 999.
  assert.ok(Number(after.proxiedRemaining) <= Number(before.proxiedRemaining), 'the default policy counted on from the loaded bucket');
  assert.ok(Number(after.policyRemaining) <= Number(before.policyRemaining), 'the named policy counted on from the loaded bucket');
  assert.equal((await client.request(`${gw.url}/me`, { headers: bearer(gone.access_token) })).status, 401, 'the revocation came back with the dataset');
  assert.equal((await post('/auth/refresh', { refresh_token: gone.refresh_token })).status, 401, 'the logged-out refresh token stays refused');
  const refreshed = await post('/auth/refresh', { refresh_token: account.refresh_token });
  assert.equal(refreshed.status, 200, `the refresh refused while loading is served now: ${refreshed.text}`);

  // Logged once per source and policy (proxied allow, auth API deny, revocation deny), not once per request.
  const outages = gw.logs.filter((l) => l.msg === 'KV Store Unavailable');
  assert.ok(outages.length >= 1 && outages.length <= 4, `outage lines: ${outages.length}`);
  assert.ok(
    outages.some((l) => /^\w+\(LOADING\)$/.test(String(l.cause))),
    `the cause names LOADING, class and code only: ${outages.map((l) => l.cause).join(', ')}`,
  );
  assertQuietLogs(stack, [/loading the dataset/i, /in memory/i]);
});
