// Rate-limit phase over real HTTP with the memory store: 429 body and headers, keys, route classes, login throttle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKvStore } from '../kv/memory.js';
import { createRateLimitPhase, loginKey, policyKeyPrefix } from './phase.js';
import { rateLimitConfig, startLimiterServer, type LimiterTestServer } from '../../test/ratelimit/limiter-server.js';
import { pino } from 'pino';

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function get(server: LimiterTestServer, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(server.url + path, { headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** Each test uses its own client address (X-Forwarded-For from the trusted 127.0.0.1), so buckets never overlap. */
let nextClient = 1;
const client = (): Record<string, string> => ({ 'x-forwarded-for': `198.51.100.${nextClient++}` });

describe('rate-limit phase (memory store)', () => {
  let store: MemoryKvStore;
  let server: LimiterTestServer;

  before(async () => {
    store = new MemoryKvStore();
    // Burst 10 refilled at 10/min (one token per 6 s), so a slow, loaded machine cannot refill a token mid-test;
    // the spec's 100/min timings are covered by bucket.test.ts. Auth: the default 20/min burst 5.
    server = await startLimiterServer(rateLimitConfig({ requests_per_minute: 10, burst_size: 10 }), store);
  });
  after(async () => {
    await server.close();
    await store.close();
  });

  test('15 rapid requests: 10 pass, 5 get 429 with retry_after, Retry-After and the RateLimit-* headers', async () => {
    const from = client();
    const replies: Reply[] = [];
    for (let i = 0; i < 15; i++) replies.push(await get(server, '/api/items', from));
    assert.deepEqual(replies.map((r) => r.status), [...Array(10).fill(200), ...Array(5).fill(429)]);
    replies.slice(0, 10).forEach((r, i) => {
      assert.equal(r.headers.get('ratelimit-limit'), '10');
      assert.equal(r.headers.get('ratelimit-remaining'), String(9 - i));
      assert.equal(r.headers.get('ratelimit-policy'), '10;w=60');
      assert.equal(r.headers.get('retry-after'), null);
    });
    for (const r of replies.slice(10)) {
      assert.equal(r.body.error, 'Too Many Requests');
      // Just under 6 s to the next token, rounded up to whole seconds; less what refilled while the requests ran (a
      // loaded machine took over a second for the 15, and answered 5).
      const retryAfter = Number(r.body.retry_after);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 6, `retry_after ${String(r.body.retry_after)}`);
      assert.equal(typeof r.body.request_id, 'string');
      assert.equal(r.headers.get('retry-after'), String(retryAfter));
      assert.equal(r.headers.get('ratelimit-remaining'), '0');
      // An empty bucket is full again after 60 s, less the same refill.
      const reset = Number(r.headers.get('ratelimit-reset'));
      assert.ok(reset >= 54 && reset <= 60, `RateLimit-Reset ${String(reset)}`);
      assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
    }
    assert.equal(server.asyncDecisions, 0, 'the memory store answers synchronously: no promise per request');
  });

  test('after waiting for a token, the client passes again (100/min: a token every 0.6 s)', async () => {
    const fastStore = new MemoryKvStore();
    const fast = await startLimiterServer(rateLimitConfig(), fastStore);
    try {
      const from = client();
      const first = await get(fast, '/x', from);
      assert.equal(first.headers.get('ratelimit-policy'), '10;w=6');
      assert.equal(first.headers.get('ratelimit-reset'), '1');
      for (let i = 0; i < 14; i++) await get(fast, '/x', from);
      await new Promise((r) => setTimeout(r, 700));
      assert.equal((await get(fast, '/x', from)).status, 200);
    } finally {
      await fast.close();
      await fastStore.close();
    }
  });

  test('an authenticated user is limited by user id, not by address', async () => {
    const from = client();
    for (let i = 0; i < 10; i++) await get(server, '/x', { ...from, 'x-test-user': 'alice' });
    assert.equal((await get(server, '/x', { ...from, 'x-test-user': 'alice' })).status, 429);
    // Alice from another address is still alice.
    assert.equal((await get(server, '/x', { ...client(), 'x-test-user': 'alice' })).status, 429);
    // Bob and the anonymous traffic from alice's address have their own buckets.
    assert.equal((await get(server, '/x', { ...from, 'x-test-user': 'bob' })).status, 200);
    assert.equal((await get(server, '/x', from)).status, 200);
  });

  test('/health is never limited and carries no RateLimit headers', async () => {
    const from = client();
    for (let i = 0; i < 30; i++) {
      const r = await get(server, '/health', from);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('ratelimit-limit'), null);
    }
  });

  test('auth routes use the stricter auth rule by client address, separate from the proxy bucket', async () => {
    const from = client();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await get(server, '/auth/register', { ...from, 'x-test-user': 'carol' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    const limited = await get(server, '/auth/register', from);
    assert.equal(limited.headers.get('ratelimit-limit'), '5');
    assert.equal(limited.headers.get('ratelimit-policy'), '5;w=15');
    assert.equal(limited.headers.get('retry-after'), '3'); // 20/min: a token every 3 s
    assert.equal((await get(server, '/api/items', from)).status, 200);
  });

  test('login: the strict bucket is per email + address; the same email from another address passes', async () => {
    const from = client();
    const statuses: number[] = [];
    // The address bucket (burst 5) and the email + address bucket (burst 5) both allow five.
    for (let i = 0; i < 6; i++) statuses.push((await get(server, '/auth/login', { ...from, 'x-test-email': 'Dave@Example.test' })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    // From other addresses the same email (in any case and spacing) is not refused: nobody can lock Dave out.
    for (let i = 0; i < 3; i++) {
      assert.equal((await get(server, '/auth/login', { ...client(), 'x-test-email': ' dave@example.TEST ' })).status, 200);
    }
  });

  test('the events sink sees every pass and reject with its route class', async () => {
    server.events.length = 0;
    const from = client();
    for (let i = 0; i < 6; i++) await get(server, '/auth/x', from);
    await get(server, '/health', from);
    await get(server, '/p', from);
    assert.deepEqual(server.events, [...Array(5).fill('pass:auth'), 'reject:auth', 'pass:proxy']);
  });
});

describe('rate-limit phase: rate_limit.enabled false', () => {
  test('proxied traffic is not limited, but the auth API bucket and the login buckets still are', async () => {
    const store = new MemoryKvStore();
    const config = rateLimitConfig({ enabled: false });
    const phase = createRateLimitPhase({ config, store, logger: pino({ level: 'silent' }) });
    assert.equal(phase.onRequest, undefined, 'no hook on proxied routes');
    assert.equal(phase.onResponse, undefined);
    assert.equal(typeof phase.penalize, 'function', 'the failed-auth penalty is an auth protection: kept');
    const server = await startLimiterServer(config, store);
    try {
      const from = client();
      for (let i = 0; i < 15; i++) assert.equal((await get(server, '/api/items', from)).status, 200);
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await get(server, '/auth/login', { ...from, 'x-test-email': 'f@example.test' })).status);
      // The /auth/* bucket (burst 5) and the email + address bucket (burst 5), as with the limiter on.
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    } finally {
      await server.close();
      await store.close();
    }
  });

  test('rate_limit.auth.enabled false as well: no hooks, no penalty, and the login throttle always continues', async () => {
    const store = new MemoryKvStore();
    const config = rateLimitConfig({ enabled: false, auth: { enabled: false } });
    const phase = createRateLimitPhase({ config, store, logger: pino({ level: 'silent' }) });
    assert.equal(phase.onRequest, undefined);
    assert.equal(phase.penalize, undefined);
    const server = await startLimiterServer(config, store);
    try {
      const from = client();
      for (let i = 0; i < 12; i++) {
        const r = await get(server, '/auth/login', { ...from, 'x-test-email': 'f@example.test' });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('ratelimit-limit'), null);
      }
    } finally {
      await server.close();
      await store.close();
    }
  });

  test('rate_limit.auth.enabled false with the proxy limit on: /auth/* unlimited, proxied routes still limited', async () => {
    const store = new MemoryKvStore();
    const server = await startLimiterServer(rateLimitConfig({ requests_per_minute: 10, burst_size: 3, auth: { enabled: false } }), store);
    try {
      const from = client();
      for (let i = 0; i < 8; i++) assert.equal((await get(server, '/auth/login', { ...from, 'x-test-email': 'g@example.test' })).status, 200);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await get(server, '/api/items', from)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
    } finally {
      await server.close();
      await store.close();
    }
  });
});

describe('bucket keys', () => {
  test("a named policy's keys never meet the default policy's (policy abcd, client 1:: vs client abcd:1::)", () => {
    assert.notEqual(policyKeyPrefix('p', 'abcd') + '1::', policyKeyPrefix('p', 'default') + 'abcd:1::');
    assert.equal(policyKeyPrefix('p', 'default'), 'p:', "the default policy's keys are unchanged");
  });

  test('no two (family, policy, id) triples give one key, across every family', () => {
    const policies = ['default', 'abcd', 'abcd:1', 'a', 'a.b', 'p', 'u', 'le', 'plugin', 'x_y-z'];
    const ids = ['1::', 'abcd:1::', '1:1::', 'a|b', '|', '', '198.51.100.1', '2001:db8:0:0::/64', 'le:x', 'default|1::'];
    const seen = new Map<string, string>();
    const add = (key: string, what: string): void => {
      assert.equal(seen.get(key), undefined, `${what} and ${seen.get(key)} share the key ${key}`);
      seen.set(key, what);
    };
    for (const family of ['u', 'k', 'p', 'f'] as const) {
      for (const policy of policies) for (const id of ids) add(policyKeyPrefix(family, policy) + id, `${family} ${policy} ${id}`);
    }
    // The auth API's and the login buckets' keys (digests are base64url), and a plugin's bucket.
    for (const id of ids) add('a:' + id, `a ${id}`);
    for (const digest of ['AAAAAAAAAAAAAAAAAAAAAA', 'abcd']) {
      add(loginKey(digest), `le ${digest}`);
      for (const id of ids) add(loginKey(digest, id), `l ${digest} ${id}`);
    }
    add('plugin:quota:1::', 'plugin');
  });
});

describe('rate-limit phase: login buckets', () => {
  test('per email + address: 429 with its own limit; other emails from that address and the email elsewhere pass', async () => {
    const store = new MemoryKvStore();
    const config = rateLimitConfig({
      auth: { requests_per_minute: 60, burst_size: 50, per_email_address: { requests_per_minute: 1, burst_size: 3 } },
    });
    const server = await startLimiterServer(config, store);
    try {
      const from = client();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get(server, '/auth/login', { ...from, 'x-test-email': 'gil@example.test' })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const refused = await get(server, '/auth/login', { ...from, 'x-test-email': 'gil@example.test' });
      assert.equal(refused.headers.get('ratelimit-limit'), '3');
      assert.equal(refused.headers.get('ratelimit-policy'), '3;w=180');
      assert.equal((await get(server, '/auth/login', { ...from, 'x-test-email': 'hal@example.test' })).status, 200);
      assert.equal((await get(server, '/auth/login', { ...client(), 'x-test-email': 'gil@example.test' })).status, 200);
    } finally {
      await server.close();
      await store.close();
    }
  });

  test('per email from anywhere: concurrent logins past the burst are let through one refill apart, the rest get 429 at once', async () => {
    const store = new MemoryKvStore();
    // One token a second, burst 2, at most 2.5 s of wait: two at once, then waits of about 1 s and 2 s, then 429.
    const config = rateLimitConfig({
      auth: { requests_per_minute: 600, burst_size: 50, per_email: { requests_per_minute: 60, burst_size: 2, max_delay: '2500ms' } },
    });
    const server = await startLimiterServer(config, store);
    try {
      const started = performance.now();
      const replies = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const r = await get(server, '/auth/login', { ...client(), 'x-test-email': 'ida@example.test' });
          return { ...r, atMs: performance.now() - started };
        }),
      );
      const passed = replies.filter((r) => r.status === 200).map((r) => r.atMs).sort((a, b) => a - b);
      const refused = replies.filter((r) => r.status === 429);
      const shown = replies.map((r) => `${r.status}@${Math.round(r.atMs)}`).join(' ');
      // Four fit (two tokens, two lent); a fifth only if the requests took over half a second to arrive.
      assert.ok(passed.length >= 4 && passed.length <= 5, shown);
      assert.equal(refused.length, 8 - passed.length, shown);
      // The lent tokens reach the password check as they would have refilled: the k-th no sooner than (k - 1) s.
      passed.forEach((at, k) => assert.ok(k < 2 || at >= (k - 1) * 1000 - 20, `pass ${k} at ${Math.round(at)} ms: ${shown}`));
      for (const r of refused) {
        assert.ok(r.atMs < passed.at(-1)!, `a 429 is answered at once, not after the wait: ${shown}`);
        assert.equal(r.headers.get('retry-after'), '1');
        assert.equal(r.headers.get('ratelimit-limit'), '2');
        assert.equal(r.headers.get('ratelimit-policy'), '2;w=2');
      }
      assert.ok(passed.at(-1)! < 4_000, `never much longer than max_delay: ${shown}`);
    } finally {
      await server.close();
      await store.close();
    }
  });
});

describe('rate-limit phase: a reload', () => {
  test('a limiter built for a changed rule tells the memory store at once; one built for the same rule tells it nothing', async () => {
    const store = new MemoryKvStore({ sweepIntervalMs: 1e9 });
    try {
      const first = await startLimiterServer(rateLimitConfig({ requests_per_minute: 60, burst_size: 3 }), store);
      await first.close();
      assert.equal(store.pendingRuleCount, 0, 'start-up: no bucket is older than the rules');
      const same = await startLimiterServer(rateLimitConfig({ requests_per_minute: 60, burst_size: 3 }), store);
      await same.close();
      assert.equal(store.pendingRuleCount, 0, 'a reload that changed nothing');
      const slower = await startLimiterServer(rateLimitConfig({ requests_per_minute: 1, burst_size: 3 }), store);
      await slower.close();
      assert.equal(store.pendingRuleCount, 1, 'the default policy\'s new rule, before any take under it');
    } finally {
      await store.close();
    }
  });
});
