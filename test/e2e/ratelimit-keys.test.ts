// Bucket keys through one gateway with auth on: per user when a valid token is sent, per address otherwise;
// /auth/* has its own stricter bucket, and login is also limited per email.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { authConfig, bearer, PASSWORD, rateLimitConfig, register, runId, sequence, statusCounts } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

const domain = `keys-${runId()}.example`;

/** An auth-enabled gateway (SQLite in its own data dir); /public/* is reachable without a token. */
async function gateway(rateLimit: Record<string, unknown> = {}, server: Record<string, unknown> = {}): Promise<InProcessGateway> {
  const gw = await startInProcess({
    server,
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: authConfig({ public_paths: ['/public/*'] }), rate_limit: rateLimitConfig(rateLimit) },
  });
  after(() => gw.close());
  return gw;
}

test('with a valid token the bucket is the user: two users on one address, and anonymous calls, are limited apart', async () => {
  const gw = await gateway();
  const alice = await register(client, gw.url, `alice@${domain}`);
  const bob = await register(client, gw.url, `bob@${domain}`);

  // Burst 10 at 1 token/min: Alice's 15 requests give exactly 10 passes.
  const aliceRuns = await sequence(15, () => client.request(`${gw.url}/api`, { headers: bearer(alice) }));
  assert.deepEqual(statusCounts(aliceRuns), { 200: 10, 429: 5 });
  // The upstream saw Alice's identity on the requests that passed.
  const echoed = aliceRuns[0]!.json<{ headers: Record<string, string> }>().headers;
  assert.equal(echoed['x-user-id'], alice.userId);

  // Bob, from the same address, has a full bucket of his own.
  const bobFirst = await client.request(`${gw.url}/api`, { headers: bearer(bob) });
  assert.equal(bobFirst.status, 200);
  assert.equal(bobFirst.headers['ratelimit-remaining'], '9');
  // So does the address itself (anonymous requests on a public path), untouched by both users.
  const anonymous = await sequence(10, () => client.request(`${gw.url}/public/page`));
  assert.deepEqual(statusCounts(anonymous), { 200: 10 });
  assert.equal((await client.request(`${gw.url}/public/page`)).status, 429, 'the address bucket drains on its own');
  // Draining the address does not touch the users, and Alice is still limited.
  assert.equal((await client.request(`${gw.url}/api`, { headers: bearer(bob) })).status, 200);
  assert.equal((await client.request(`${gw.url}/api`, { headers: bearer(alice) })).status, 429);
});

test('an invalid token on a public path is keyed by address, not by the claimed user', async () => {
  const gw = await gateway();
  // A forged token: on a public path the request is anonymous, so it shares the address's bucket.
  const forged = { authorization: 'Bearer not.a.jwt' };
  const mixed = await sequence(15, (i) => client.request(`${gw.url}/public/x`, i % 2 === 0 ? { headers: forged } : {}));
  assert.deepEqual(statusCounts(mixed), { 200: 10, 429: 5 });
});

test('/auth/* has its own stricter bucket (middleware.rate_limit.auth), separate from the proxy bucket', async () => {
  // Auth bucket: burst 3, 1 token/min, so the 4th auth call within a minute is refused whatever it is.
  const gw = await gateway({ auth: { requests_per_minute: 1, burst_size: 3 } });
  const attempts = await sequence(5, (i) =>
    client.postJson(`${gw.url}/auth/login`, { email: `nobody${i}@${domain}`, password: PASSWORD }),
  );
  // Unknown users: 401 while tokens last (the login was really tried), then 429 from the auth bucket.
  assert.deepEqual(attempts.map((r) => r.status), [401, 401, 401, 429, 429]);
  const rejected = attempts[3]!;
  assert.equal(rejected.json<{ error: string }>().error, 'Too Many Requests');
  assert.equal(rejected.headers['ratelimit-limit'], '3');
  assert.equal(rejected.headers['ratelimit-policy'], '3;w=180');
  assert.match(String(rejected.headers['retry-after']), /^\d+$/);
  // Registration is an auth route too: refused by the same bucket.
  assert.equal((await client.postJson(`${gw.url}/auth/register`, { email: `late@${domain}`, password: PASSWORD })).status, 429);

  // The proxy bucket of the same address is untouched: full, with the main rule's limit.
  const proxied = await client.request(`${gw.url}/public/after-auth`);
  assert.equal(proxied.status, 200);
  assert.equal(proxied.headers['ratelimit-limit'], '10');
  assert.equal(proxied.headers['ratelimit-remaining'], '9');
});

test('a third party cannot lock an account owner out: per-email guessing only spaces logins out, from elsewhere they still work', async () => {
  // Address buckets of burst 3 on /auth/*; email + address keeps its default (burst 5, 1/min → 429); the email from
  // anywhere: burst 10 at 10/min, and a login past it waits for its token only when that comes within 1 s, so with
  // the budget spent a login is refused (429, Retry-After) unless the guesses took over 5 s.
  const gw = await gateway(
    { auth: { requests_per_minute: 1, burst_size: 3, per_email: { requests_per_minute: 10, burst_size: 10, max_delay: '1s' } } },
    { trusted_proxies: ['127.0.0.1'] },
  );
  const owner = await register(client, gw.url, `owner@${domain}`);
  const viaProxy = (ip: string) => ({ 'x-forwarded-for': ip });
  const guess = (ip: string, i: number) =>
    client.postJson(`${gw.url}/auth/login`, { email: owner.email.toUpperCase(), password: `wrong-guess-${i}` }, viaProxy(ip));

  // The attacker's own address runs dry (429); rotating addresses, the guesses go on, but only as 401s.
  const first = await sequence(4, (i) => guess('192.0.2.1', i));
  assert.deepEqual(first.map((r) => r.status), [401, 401, 401, 429]);
  const rotated = await sequence(3, (i) => guess('192.0.2.2', i));
  assert.deepEqual(rotated.map((r) => r.status), [401, 401, 401]);

  // The owner, from an address of their own, logs in at once.
  const mine = await client.postJson(`${gw.url}/auth/login`, { email: owner.email, password: PASSWORD }, viaProxy('198.51.100.9'));
  assert.equal(mine.status, 200, mine.text);

  // Past the per-email budget (10 attempts from anywhere) the guessing is held to the per-email rate: the owner's
  // login now gets 429 with a Retry-After of a few seconds, and logs in when it is over (waiting at most max_delay).
  await sequence(3, (i) => guess('192.0.2.3', i));
  const refused = await client.postJson(`${gw.url}/auth/login`, { email: owner.email, password: PASSWORD }, viaProxy('198.51.100.10'));
  assert.equal(refused.status, 429, refused.text);
  const retryAfter = Number(refused.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
  await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
  const started = performance.now();
  const later = await client.postJson(`${gw.url}/auth/login`, { email: owner.email, password: PASSWORD }, viaProxy('198.51.100.10'));
  const waited = performance.now() - started;
  assert.equal(later.status, 200, later.text);
  assert.ok(waited < 2_500, `the login after Retry-After took ${Math.round(waited)} ms (max_delay 1 s)`);
});
