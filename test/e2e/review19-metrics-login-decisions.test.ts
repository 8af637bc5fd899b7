// portcullis_rate_limit_decisions_total counts one decision per request it limited: pass + reject is the number of
// such requests, as the dashboard's Passed and Rejected (429) read it. A login meets two steps, the /auth/* bucket
// and then the login throttle (per email + address, per email), and each counted its own decision: every login that
// passed was counted "pass" twice, and every login the throttle refused both "pass" and "reject".
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { authConfig, PASSWORD, register, runId } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('echo');
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
