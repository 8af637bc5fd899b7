// The session paths while Redis answers with refusals (review9-redis-write-refusals and -busy-noauth-noscript hold
// /ready, the limiters, login and a valid token to their policies): refresh and logout, and an access token logged out
// before the refusal began. READONLY (a replica of a master that is not there: its own data kept) and OOM refuse
// writes but answer reads, so the logged-out token is refused for what it is (401), never served; BUSY refuses reads
// too, so it is 503 under auth's deny, never served. Refresh and logout meet the auth API's deny (503 kv_unavailable,
// Retry-After, none of the server's words); the outage is logged a few lines per refusal, not once per request; and
// once mended the refused refresh and logout go through and the logged-out token stays refused. Our own redis-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import { IN_CI } from '../helpers/http.js';
import { assertQuietLogs, startRedisErrorStack, type RedisErrorStack } from '../helpers/redis-error-stack.js';
import { assertSafeError, bearer, type SessionBody } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

/** One refusal: how to cause it, how to mend it, and whether reads are still answered. */
interface Refusal {
  readonly name: string;
  readonly readsWork: boolean;
  breakIt(stack: RedisErrorStack): Promise<() => Promise<void>>;
}

const send = (stack: RedisErrorStack, ...args: string[]) => stack.admin.sendCommand(args);

const REFUSALS: readonly Refusal[] = [
  {
    name: 'READONLY',
    readsWork: true,
    async breakIt(stack) {
      await send(stack, 'REPLICAOF', '127.0.0.1', String(await freePort()));
      return async () => void (await send(stack, 'REPLICAOF', 'NO', 'ONE'));
    },
  },
  {
    name: 'OOM',
    readsWork: true,
    async breakIt(stack) {
      await send(stack, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      const value = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 24; i++) await send(stack, 'SET', `fill:${i}`, value);
      await send(stack, 'CONFIG', 'SET', 'maxmemory', '1mb');
      return async () => {
        await send(stack, 'CONFIG', 'SET', 'maxmemory', '0');
        const keys = (await send(stack, 'KEYS', 'fill:*')) as string[];
        if (keys.length > 0) await send(stack, 'DEL', ...keys);
      };
    },
  },
  {
    name: 'BUSY',
    readsWork: false,
    async breakIt(stack) {
      await send(stack, 'CONFIG', 'SET', 'busy-reply-threshold', '100');
      const busy = createRedisClient({ url: stack.redis.url });
      busy.on('error', () => undefined);
      await busy.connect();
      const looping = busy.sendCommand(['EVAL', 'while true do end', '0']).catch(() => undefined);
      return async () => {
        await send(stack, 'SCRIPT', 'KILL').catch(() => undefined);
        await looping;
        busy.destroy();
      };
    },
  },
];

test('refresh, logout and a logged-out token while Redis refuses (READONLY, OOM, BUSY): policy held, nothing revoked served', { skip }, async () => {
  const stack = await startRedisErrorStack('refusals-sessions');
  const { client, gw, account } = stack;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    client.request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const login = async () => {
    const res = await post('/auth/login', { email: account.email, password: account.password });
    assert.equal(res.status, 200, res.text);
    return res.json<SessionBody>();
  };
  const outageLines = () => gw.logs.filter((l) => l.msg === 'KV Store Unavailable').length;

  for (const refusal of REFUSALS) {
    // A session logged out while Redis answers, one kept for the refresh and logout refused below.
    const gone = await login();
    assert.equal((await post('/auth/logout', { refresh_token: gone.refresh_token }, bearer(gone.access_token))).status, 200);
    const kept = await login();
    const linesBefore = outageLines();

    const mend = await refusal.breakIt(stack);
    let requests = 0;
    try {
      await stack.untilReady(503, `/ready 503 under ${refusal.name}`, 5_000);
      for (let i = 0; i < 5; i++) {
        const refresh = await post('/auth/refresh', { refresh_token: kept.refresh_token });
        const logout = await post('/auth/logout', { refresh_token: kept.refresh_token }, bearer(kept.access_token));
        const revoked = await client.request(`${gw.url}/me`, { headers: bearer(gone.access_token) });
        requests += 3;
        for (const [what, res] of [
          ['refresh', refresh],
          ['logout', logout],
        ] as const) {
          const body = assertSafeError(res, 503, [account.password, kept.refresh_token, kept.access_token]);
          assert.equal(body.code, 'kv_unavailable', `${refusal.name}: ${what}`);
          assert.match(String(res.headers['retry-after']), /^\d+$/, `${refusal.name}: ${what} Retry-After`);
        }
        if (refusal.readsWork) assert.equal(revoked.status, 401, `${refusal.name}: the logged-out token, read as revoked`);
        else {
          assert.equal(revoked.status, 503, `${refusal.name}: the logged-out token, auth's deny`);
          assert.equal(revoked.json<{ code?: string }>().code, 'kv_unavailable');
        }
      }
    } finally {
      await mend();
    }
    const lines = outageLines() - linesBefore;
    assert.ok(lines <= 3 && lines < requests, `${refusal.name}: ${lines} outage lines for ${requests} requests`);

    await stack.untilReady(200, `/ready 200 once ${refusal.name} is mended`, 5_000);
    const refreshed = await post('/auth/refresh', { refresh_token: kept.refresh_token });
    assert.equal(refreshed.status, 200, `${refusal.name}: the refused refresh, served now: ${refreshed.text}`);
    const pair = refreshed.json<SessionBody>();
    assert.equal((await post('/auth/logout', { refresh_token: pair.refresh_token }, bearer(pair.access_token))).status, 200);
    assert.equal((await client.request(`${gw.url}/me`, { headers: bearer(pair.access_token) })).status, 401, `${refusal.name}: logged out now`);
    assert.equal((await client.request(`${gw.url}/me`, { headers: bearer(gone.access_token) })).status, 401, `${refusal.name}: still refused`);
  }
  assertQuietLogs(stack, [/read only replica/i, /command not allowed/i, /maxmemory/i, /busy running a script/i, /SCRIPT KILL/i]);
});
