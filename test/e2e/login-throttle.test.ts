// The brute-force protections of /auth/* through a real gateway: on whenever auth is, whatever
// middleware.rate_limit.enabled says (only rate_limit.auth.enabled turns them off), and the per-email login delay
// reserving its token, so concurrent guesses reach the password check at the refill rate, on the memory store and on
// Redis. Clients are told apart by X-Forwarded-For from the trusted 127.0.0.1.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { authConfig, deleteRedisKeys, PASSWORD, REDIS_URL, register, requireRedis, runId, sequence, statusCounts } from './ratelimit-helpers.js';
import { uniquePrefix } from '../kv/redis-helpers.js';

const client = createClient();
const backend = await startBackend('echo');
const redisSkip = await requireRedis();
after(async () => {
  await client.close();
  await backend.stop();
});

const domain = `throttle-${runId()}.example`;
let nextAddress = 1;
/** A client address of its own (X-Forwarded-For, believed from the trusted 127.0.0.1). */
const from = (): Record<string, string> => ({ 'x-forwarded-for': `203.0.113.${nextAddress++}` });

/** An auth gateway; `rateLimit` is the whole middleware.rate_limit block (absent: the schema default, enabled false). */
async function gateway(rateLimit?: ConfigInput, redis?: ConfigInput): Promise<InProcessGateway> {
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'] },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: authConfig(), ...(rateLimit ? { rate_limit: rateLimit } : {}) },
    ...(redis ? { redis } : {}),
    admin: { enabled: false },
  });
  after(() => gw.close());
  return gw;
}

const wrongLogin = (gw: InProcessGateway, email: string, headers: Record<string, string>): Promise<TestResponse> =>
  client.postJson(`${gw.url}/auth/login`, { email, password: 'not the password' }, headers);

describe('rate_limit.enabled false (the default): the /auth/* protections stay on', () => {
  test('wrong-password logins from one address meet 429 after five, while proxied traffic is not limited', async () => {
    const gw = await gateway();
    const email = `victim@${domain}`;
    const user = await client.postJson(`${gw.url}/auth/register`, { email, password: PASSWORD }, from());
    assert.equal(user.status, 201, user.text);
    const token = user.json<{ access_token: string }>().access_token;

    const attacker = from();
    const guesses = await sequence(12, () => wrongLogin(gw, email, attacker));
    assert.deepEqual(guesses.map((r) => r.status), [...Array(5).fill(401), ...Array(7).fill(429)]);
    assert.ok(Number(guesses[5]!.headers['retry-after']) >= 1);

    // rate_limit.enabled governs proxied traffic only: 20 requests with a valid token all pass, with no headers.
    const proxied = await sequence(20, () => client.request(`${gw.url}/api`, { headers: { authorization: `Bearer ${token}`, ...attacker } }));
    assert.deepEqual(statusCounts(proxied), { 200: 20 });
    assert.equal(proxied[0]!.headers['ratelimit-limit'], undefined);
  });

  test('failed authentications on a proxied route are penalized on the address bucket (429 once it is empty)', async () => {
    // The default policy's bucket at one token a minute, so the count is exact on a slow machine.
    const gw = await gateway({ requests_per_minute: 1, burst_size: 10 });
    const attacker = from();
    const bad = await sequence(12, () => client.request(`${gw.url}/api`, { headers: { authorization: 'Bearer not.a.jwt', ...attacker } }));
    assert.deepEqual(bad.map((r) => r.status), [...Array(10).fill(401), 429, 429]);
  });

  test('rate_limit.auth.enabled false turns them off: every guess is checked, bad tokens only get 401', async () => {
    const gw = await gateway({ requests_per_minute: 1, burst_size: 10, auth: { enabled: false } });
    const email = `loadtest@${domain}`;
    await register(client, gw.url, email);
    const attacker = from();
    const guesses = await sequence(12, () => wrongLogin(gw, email, attacker));
    assert.deepEqual(statusCounts(guesses), { 401: 12 });
    const bad = await sequence(12, () => client.request(`${gw.url}/api`, { headers: { authorization: 'Bearer not.a.jwt', ...attacker } }));
    assert.deepEqual(statusCounts(bad), { 401: 12 });
  });
});

/**
 * The per-email delay: one token a second, burst 2, max_delay 2.5 s; the /auth/* and per-email + address buckets are
 * generous, so only the per-email bucket decides. Eight wrong guesses at once from eight addresses: two go on at once,
 * the lent tokens one second apart (waits of about 1 s and 2 s), and the rest get 429 at once, before any wait.
 */
const DELAY_RULES: ConfigInput = {
  auth: {
    requests_per_minute: 600,
    burst_size: 100,
    per_email_address: { requests_per_minute: 60, burst_size: 20 },
    per_email: { requests_per_minute: 60, burst_size: 2, max_delay: '2500ms' },
  },
};

async function concurrentGuesses(gw: InProcessGateway): Promise<void> {
  const email = `target@${domain}`;
  await register(client, gw.url, email).catch(async () => undefined); // registered already by the other store's run
  const started = performance.now();
  const replies = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const res = await wrongLogin(gw, email, from());
      return { res, atMs: performance.now() - started };
    }),
  );
  const shown = replies.map((r) => `${r.res.status}@${Math.round(r.atMs)}`).join(' ');
  const checked = replies.filter((r) => r.res.status === 401).map((r) => r.atMs).sort((a, b) => a - b);
  const refused = replies.filter((r) => r.res.status === 429);
  // Four reach the password check; a fifth only if the eight took over half a second to arrive.
  assert.ok(checked.length >= 4 && checked.length <= 5, shown);
  assert.equal(refused.length, 8 - checked.length, shown);
  // Spread at the refill rate: the k-th checked guess no sooner than (k - 1) s after the first was sent.
  checked.forEach((at, k) => assert.ok(k < 2 || at >= (k - 1) * 1000 - 20, `guess ${k} at ${Math.round(at)} ms: ${shown}`));
  for (const { res, atMs } of refused) {
    assert.ok(atMs < checked.at(-1)!, `the 429s come at once, not after a wait: ${shown}`);
    assert.equal(res.headers['retry-after'], '1', shown);
    assert.equal(res.json<{ code: string }>().code, 'rate_limited');
  }
}

describe('per-email login delay: concurrent guesses are spread at the refill rate or refused', () => {
  test('memory store', async () => {
    await concurrentGuesses(await gateway(DELAY_RULES));
  });

  test('Redis store', { skip: redisSkip }, async () => {
    const prefix = uniquePrefix('login-throttle');
    after(() => deleteRedisKeys(REDIS_URL, prefix));
    await concurrentGuesses(await gateway(DELAY_RULES, { url: REDIS_URL, key_prefix: prefix }));
  });
});
