// GET /api/status (the dashboard's data) under a wall clock stepped while the gateway runs (NTP correcting a VM's
// clock by minutes, a resumed laptop, a restored snapshot). It counted on Date.now():
// - the traffic ring (src/observability/recent.ts) filed requests by wall-clock second: after a step back of 10
//   minutes the requests counted before it lay in the future and vanished from the last minute's totals, and the
//   rate was divided by the gateway's age, now negative and held at 1 s; after a step forward every earlier request
//   had left the window;
// - uptime_s was wall clock minus start: -600 after the step back;
// - the Users panel's totals were re-counted once older than 5 s by the wall clock: a step back kept them 10 minutes.
// Now the three run on the monotonic clock (the chart's times are still given on the wall clock). The gateway runs
// with test/helpers/clock-offset-import.mjs and a clock file (clock-step.ts) that the test steps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startClockedGateway, type ClockedGateway } from '../helpers/clock-gateway.js';
import type { SteppedClock } from '../helpers/clock-step.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { sleep } from '../helpers/wait.js';

const STEP_MS = 10 * 60_000;
const client = createClient();
let stack: ClockedGateway | undefined;
let gw: GatewayProcess | undefined;
let clock: SteppedClock | undefined;

before(async () => {
  stack = await startClockedGateway('echo', {
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2, public_paths: ['/pub/*'] }, rate_limit: { auth: { enabled: false } } },
    admin: { token: ADMIN_TOKEN },
  });
  ({ gw, clock } = stack);
});

after(async () => {
  await client.close();
  await stack?.stop();
});

interface Status {
  uptime_s: number;
  uptime_ms: number;
  traffic: { requests: number; rate: number; series: Array<{ t: number }> };
  identity?: { totals: { users: number } | null };
}

async function status(): Promise<Status> {
  const res = await adminApi(client, `http://127.0.0.1:${gw!.adminPort!}`).get('/api/status');
  assert.equal(res.status, 200, res.text);
  return res.json<Status>();
}

async function traffic(count: number): Promise<void> {
  for (let i = 0; i < count; i++) assert.equal((await client.request(`${gw!.url}/pub/${i}`)).status, 200);
}

async function registerUser(tag: string): Promise<void> {
  const res = await client.postJson(`${gw!.url}/auth/register`, { email: `u-${tag}-${process.pid}@clock.example`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
}

/** Polls /api/status until the Users panel counts `users` (its totals are re-counted once 5 s old), at most `ms`. */
async function usersCounted(users: number, ms: number): Promise<Status> {
  const until = performance.now() + ms;
  for (;;) {
    const s = await status();
    if (s.identity?.totals?.users === users || performance.now() > until) return s;
    await sleep(250);
  }
}

// One gateway, one sequence of steps: each test below picks up where the one before left the clock.
let startedAt = 0;
let afterBack: Status | undefined;

test('before any step: the traffic and the Users panel count what was sent', async () => {
  startedAt = performance.now();
  await traffic(10);
  await registerUser('first');
  assert.equal((await usersCounted(1, 7_000)).identity?.totals?.users, 1, 'the first user is counted');
});

test('stepped back 10 minutes: the Users totals are re-counted 5 s later, not 10 minutes later', async () => {
  await clock!.step(-STEP_MS);
  await traffic(10);
  await registerUser('second');
  afterBack = await usersCounted(2, 8_000);
  assert.equal(afterBack.identity?.totals?.users, 2);
});

test('stepped back 10 minutes: uptime stays positive, the requests before the step still count, the rate is not per 1 s', async () => {
  const s = afterBack ?? (await status());
  assert.ok(s.uptime_s >= 0, `uptime_s ${s.uptime_s}`);
  assert.ok(s.traffic.requests >= 22, `the requests before the step still count: ${s.traffic.requests}`);
  // Divided by the time the gateway has served (at least what this file waited), never by 1 s.
  const servedS = (performance.now() - startedAt) / 1000;
  assert.ok(s.traffic.rate <= (s.traffic.requests / servedS) * 1.5, `rate ${s.traffic.rate} over ${servedS} s`);
  // The chart is still on the wall clock as the gateway reads it now: its last point ends within a few seconds of it.
  const wallNow = Date.now() - STEP_MS;
  const lastT = s.traffic.series.at(-1)!.t;
  assert.ok(Math.abs(lastT - wallNow) < 10_000, `last point at ${lastT}, gateway clock ${wallNow}`);
});

test('stepped forward 20 minutes: the requests before the step still count, uptime does not jump', async () => {
  const before = await status();
  await clock!.step(STEP_MS);
  const s = await status();
  assert.ok(s.traffic.requests >= 22, `the requests before the forward step still count: ${s.traffic.requests}`);
  assert.ok(s.uptime_ms >= before.uptime_ms, 'uptime_ms only grows');
  assert.ok(s.uptime_s < 120, `uptime_s ${s.uptime_s}`);
});
