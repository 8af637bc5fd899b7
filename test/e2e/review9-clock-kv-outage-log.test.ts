// The Redis outage log (src/kv/outage.ts: "KV Store Unavailable" once, "KV Store Recovered" with `outage_ms` at the
// first answer 5 s after the last failure) under a wall clock that steps while Redis is away (NTP correcting a VM's
// clock by minutes). It timed everything on Date.now():
// - stepped back 10 minutes between two failures: the Recovered line said `outage_ms: -599…`;
// - stepped forward 10 minutes: `outage_ms: 600…` for an outage of a second or two;
// - stepped back after the last failure: the quiet period ("5 s since the last failure") only ended once the wall clock
//   had caught up, 10 minutes later: no Recovered line, and an outage meanwhile was taken for the old one and never
//   announced.
// Each gateway reaches the shared Redis through a TCP forwarder the test cuts and restores, its wall clock through
// test/helpers/clock-offset-import.mjs with a clock file the test steps. The three run side by side (the quiet period
// is 5 s each).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js';
import { waitFor } from '../helpers/wait.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skip = await requireRedis();
const STEP_MS = 10 * 60_000;
const prefix = `portcullis-test:review9-clock-outage:${runId()}:`;
const client = createClient();
const cleanups: Array<() => unknown> = [];
let backend: TestBackend | undefined;

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await client.close();
  await backend?.stop();
  if (!skip) await deleteRedisKeys(REDIS_URL, prefix);
});

interface Rig {
  readonly gw: GatewayProcess;
  readonly link: TcpForwarder;
  readonly clock: SteppedClock;
}

async function rig(name: string): Promise<Rig> {
  backend ??= await startBackend('echo');
  const redis = new URL(REDIS_URL);
  const link = await startTcpForwarder(redis.hostname, Number(redis.port || 6379));
  cleanups.push(() => link.close());
  const clock = steppedClock();
  cleanups.push(() => clock.remove());
  const gw = await spawnGateway(
    {
      redis: { url: `redis://127.0.0.1:${link.port}`, key_prefix: `${prefix}${name}:`, command_timeout: '300ms' },
      load_balancing: { upstreams: upstreams([backend.port]) },
      // Generous: the buckets are not under test, every decision is one store command.
      middleware: { rate_limit: { enabled: true, requests_per_minute: 60_000, burst_size: 10_000 } },
    },
    { env: clock.env },
  );
  cleanups.push(() => gw.cleanup());
  await waitFor(async () => (await client.request(`${gw.url}/up`)).headers['ratelimit-limit'] !== undefined, 'the limiter to reach Redis', 10_000);
  return { gw, link, clock };
}

const lines = (gw: GatewayProcess, msg: string) => gw.logs.filter((l) => l.msg === msg);

/** Fails one decision: the request still passes (on_store_error allow), the store error is counted. */
async function failOnce(r: Rig): Promise<void> {
  const res = await client.request(`${r.gw.url}/down`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['ratelimit-limit'], undefined, 'no decision while Redis is away');
}

/** Restores the link and sends requests until the Recovered line (the quiet period is 5 s); returns it. */
async function recovered(r: Rig): Promise<Record<string, unknown>> {
  await r.link.restore();
  await waitFor(async () => {
    await client.request(`${r.gw.url}/back`);
    return lines(r.gw, 'KV Store Recovered').length > 0;
  }, 'the KV Store Recovered line', 12_000, 200);
  return lines(r.gw, 'KV Store Recovered')[0]!;
}

test('the Redis outage log times outages on a monotonic clock', { skip, concurrency: 3 }, async (t) => {
  const [back, forward, afterLast] = await Promise.all([rig('back'), rig('forward'), rig('after')]);
  await Promise.all([
    t.test('stepped back 10 minutes mid-outage: outage_ms is the outage, not negative', async () => {
      await back.link.cut();
      await failOnce(back);
      await back.clock.step(-STEP_MS);
      await failOnce(back);
      const line = await recovered(back);
      assert.equal(typeof line.outage_ms, 'number');
      assert.ok((line.outage_ms as number) >= 0 && (line.outage_ms as number) < 30_000, `outage_ms ${String(line.outage_ms)}`);
      assert.ok((line.failed_decisions as number) >= 2, 'both failures counted');
    }),
    t.test('stepped forward 10 minutes mid-outage: outage_ms is the outage, not the step', async () => {
      await forward.link.cut();
      await failOnce(forward);
      await forward.clock.step(STEP_MS);
      await failOnce(forward);
      const line = await recovered(forward);
      assert.ok((line.outage_ms as number) >= 0 && (line.outage_ms as number) < 30_000, `outage_ms ${String(line.outage_ms)}`);
      // Nor was the step taken for the minute after which an ongoing outage is recalled.
      assert.equal(lines(forward.gw, 'KV Store Unavailable').length, 1, 'one Unavailable line');
    }),
    t.test('stepped back after the last failure: the recovery is logged, and the next outage announced', async () => {
      await afterLast.link.cut();
      await failOnce(afterLast);
      // Redis answers again (reconnecting may fail a few decisions more): only then the step, after the last failure.
      await afterLast.link.restore();
      await waitFor(async () => (await client.request(`${afterLast.gw.url}/back`)).headers['ratelimit-limit'] !== undefined, 'decisions through Redis again', 10_000);
      await afterLast.clock.step(-STEP_MS);
      await recovered(afterLast);
      await afterLast.link.cut();
      await failOnce(afterLast);
      // The log is written in batches (a flush every 200 ms).
      await waitFor(() => lines(afterLast.gw, 'KV Store Unavailable').length === 2, 'the second outage to have a line of its own', 3_000);
    }),
  ]);
});
