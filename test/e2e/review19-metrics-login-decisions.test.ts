// portcullis_rate_limit_decisions_total counts one decision per request it limited: pass + reject is the number of
// such requests, as the dashboard's Passed and Rejected (429) read it. A login meets two steps, the /auth/* bucket
// and then the login throttle (per email + address, per email), and each counted its own decision: every login that
// passed was counted "pass" twice, and every login the throttle refused both "pass" and "reject".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { sleep } from '../helpers/wait.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { authConfig, deleteRedisKeys, PASSWORD, REDIS_URL, register, requireRedis, runId } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('echo');
const redisSkip = await requireRedis();
after(async () => {
  await client.close();
  await backend.stop();
});

test('logins are counted once each: passed ones as pass, the ones the login throttle refuses as reject', async () => {
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'] },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: {
      auth: authConfig(),
      // The /auth/* bucket is generous; the per-email + address bucket refuses after 3.
      rate_limit: { auth: { requests_per_minute: 600, burst_size: 100, per_email_address: { requests_per_minute: 1, burst_size: 3 } } },
    },
  });
  after(() => gw.close());
  const email = `decisions-${runId()}@example.com`;
  await register(client, gw.url, email);
  const decisions = async () => {
    const text = (await client.request(`${gw.adminUrl}/metrics`)).text;
    return {
      pass: sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision: 'pass', route: 'auth' }) ?? 0,
      reject: sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision: 'reject', route: 'auth' }) ?? 0,
    };
  };
  const before = await decisions();

  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await client.postJson(`${gw.url}/auth/login`, { email, password: 'not the password' }, { 'x-forwarded-for': '203.0.113.40' });
    statuses.push(res.status);
  }
  assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
  // A login refused before the throttle (no password): the /auth/* bucket's pass is its decision.
  assert.equal((await client.postJson(`${gw.url}/auth/login`, { email }, { 'x-forwarded-for': '203.0.113.41' })).status, 400);
  // One that gets in, from another address.
  assert.equal((await client.postJson(`${gw.url}/auth/login`, { email, password: PASSWORD }, { 'x-forwarded-for': '203.0.113.42' })).status, 200);

  const now = await decisions();
  assert.deepEqual({ pass: now.pass - before.pass, reject: now.reject - before.reject }, { pass: 5, reject: 3 }, 'eight logins, eight decisions');
});

describe('a client that leaves while a bucket is deciding: its request is still one decision', { skip: redisSkip }, () => {
  // Redis behind a link that delays each direction 60 ms, so the client can leave mid-take: the request is logged
  // (499) at once, and its logging phase ran before the take's outcome. A login the throttle refused was counted
  // pass and reject; a request whose /auth/* take was still under way, nothing (found by the fix review).
  let delayMs = 0;
  const links = new Set<Socket>();
  const slowLink = createServer((client) => {
    const redis = connect(new URL(REDIS_URL).port ? Number(new URL(REDIS_URL).port) : 6379, new URL(REDIS_URL).hostname);
    for (const s of [client, redis]) {
      links.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        links.delete(s);
        client.destroy();
        redis.destroy();
      });
    }
    const relay = (from: Socket, to: Socket) => from.on('data', (d) => (delayMs === 0 ? to.write(d) : setTimeout(() => to.write(d), delayMs)));
    relay(client, redis);
    relay(redis, client);
  });
  const prefix = uniquePrefix('review19-login-leave');
  let gw: InProcessGateway;
  before(async () => {
    await new Promise<void>((resolve) => slowLink.listen(0, '127.0.0.1', resolve));
    gw = await startInProcess({
      server: { trusted_proxies: ['127.0.0.1'] },
      redis: { url: `redis://127.0.0.1:${(slowLink.address() as AddressInfo).port}`, key_prefix: prefix },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: { auth: authConfig(), rate_limit: { auth: { requests_per_minute: 600, burst_size: 100, per_email_address: { requests_per_minute: 1, burst_size: 3 } } } },
    });
  });
  after(async () => {
    await gw?.close();
    for (const s of links) s.destroy();
    slowLink.close();
    await deleteRedisKeys(REDIS_URL, prefix);
  });

  /** POSTs `body` and leaves (destroys the connection) after `leaveAfterMs`; resolves once it has left or been answered. */
  const leavingPost = (path: string, body: object, leaveAfterMs: number): Promise<void> =>
    new Promise((resolve) => {
      const data = JSON.stringify(body);
      const req = httpRequest(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), 'x-forwarded-for': '203.0.113.50' },
      });
      req.on('response', (res) => void res.resume().on('end', () => resolve()));
      req.on('error', () => resolve());
      req.end(data);
      setTimeout(() => req.destroy(), leaveAfterMs);
    });

  const decisions = async () => {
    const text = (await client.request(`${gw.adminUrl}/metrics`)).text;
    const value = (decision: string) => sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision, route: 'auth' }) ?? 0;
    return { pass: value('pass'), reject: value('reject') };
  };
  const oneDecisionAfter = async (what: string, step: () => Promise<void>, expected: { pass: number; reject: number }) => {
    const before = await decisions();
    await step();
    // The take under way answers within a few of the link's delays; then the count is final.
    await sleep(1_500);
    const now = await decisions();
    assert.deepEqual({ pass: now.pass - before.pass, reject: now.reject - before.reject }, expected, what);
  };

  test('a login the throttle refuses, and a refresh, each counted once though the client left mid-take', async () => {
    const email = `leave-${runId()}@example.com`;
    await register(client, gw.url, email);
    // The per-email + address bucket used up: the next login from this address is the throttle's 429.
    for (let i = 0; i < 3; i++) {
      const res = await client.postJson(`${gw.url}/auth/login`, { email, password: 'not the password' }, { 'x-forwarded-for': '203.0.113.50' });
      assert.equal(res.status, 401);
    }
    delayMs = 60;
    // The /auth/* take takes about 120 ms; the client leaves during the throttle's take that follows it.
    await oneDecisionAfter('login refused by the throttle', () => leavingPost('/auth/login', { email, password: 'not the password' }, 190), { pass: 0, reject: 1 });
    // The client leaves during the /auth/* take itself.
    await oneDecisionAfter('refresh', () => leavingPost('/auth/refresh', { refresh_token: 'x' }, 60), { pass: 1, reject: 0 });
  });
});
