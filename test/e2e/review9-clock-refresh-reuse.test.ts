// Refresh-token reuse detection under a wall clock stepped back (NTP correcting a clock that ran ahead, a VM restored
// from a snapshot) or behind the gateway that rotated the token. A refresh token presented again after it was rotated
// is a reuse, and revokes its whole session, unless it comes within `jwt.refresh_reuse_grace` (10 s) of the rotation
// (two concurrent refreshes of one client). The grace was judged by `now - revoked_at` alone: once the clock had
// stepped back 10 minutes, every rotation lay in the future, the difference was negative and so "within the grace
// period", and a stolen refresh token replayed in those 10 minutes was refused without revoking anything: the thief's
// and the owner's sessions both went on. Now a rotation more than the 5 s clock tolerance ahead of the clock is no
// concurrent refresh. Both user stores (SQLite, PostgreSQL) make that decision; each is run. The gateways run with
// test/helpers/clock-offset-import.mjs and a clock file (clock-step.ts) that the tests step.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const STEP_BACK_MS = -10 * 60_000;
const pgSkip = await requirePostgres();
const client = createClient();
let backend: TestBackend | undefined;
let db: IsolatedDatabase | undefined;
const gateways: Record<'sqlite' | 'postgres', { gw: GatewayProcess; clock: SteppedClock } | undefined> = { sqlite: undefined, postgres: undefined };

function config(database: ConfigInput | undefined, port: number): ConfigInput {
  return {
    load_balancing: { upstreams: upstreams([port]) },
    ...(database === undefined ? {} : { database }),
    jwt: { secret: TEST_SECRET },
    // The brute-force protections are not under test (several /auth calls a second from 127.0.0.1).
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  };
}

async function start(kind: 'sqlite' | 'postgres', database?: ConfigInput): Promise<void> {
  const clock = steppedClock();
  try {
    gateways[kind] = { gw: await spawnGateway(config(database, backend!.port), { env: clock.env, timeoutMs: 60_000 }), clock };
  } catch (err) {
    clock.remove();
    throw err;
  }
}

before(async () => {
  backend = await startBackend('echo');
  const starts = [start('sqlite')];
  if (!pgSkip) {
    db = await isolatedDatabase();
    starts.push(start('postgres', { url: taggedUrl(db.name, uniqueApplicationName('review9-clock')), pool_size: 4 }));
  }
  const results = await Promise.allSettled(starts);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

after(async () => {
  await client.close();
  for (const g of Object.values(gateways)) {
    await g?.gw.cleanup();
    g?.clock.remove();
  }
  await db?.cleanup('u-');
  await backend?.stop();
});

async function registered(url: string, tag: string): Promise<{ refresh: string; access: string }> {
  const res = await client.postJson(`${url}/auth/register`, { email: `u-${tag}-${Date.now()}@clock.example`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
  const body = res.json<{ refresh_token: string; access_token: string }>();
  return { refresh: body.refresh_token, access: body.access_token };
}

async function refresh(url: string, token: string): Promise<{ status: number; refresh?: string; access?: string }> {
  const res = await client.postJson(`${url}/auth/refresh`, { refresh_token: token });
  if (res.status !== 200) return { status: res.status };
  const body = res.json<{ refresh_token: string; access_token: string }>();
  return { status: 200, refresh: body.refresh_token, access: body.access_token };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  const skip = kind === 'postgres' ? pgSkip : false;

  test(`${kind}: a rotated refresh token replayed after the clock stepped back 10 minutes revokes its session`, { skip }, async () => {
    const { gw, clock } = gateways[kind]!;
    const first = await registered(gw.url, `${kind}-back`);
    const rotated = await refresh(gw.url, first.refresh);
    assert.equal(rotated.status, 200, 'the first rotation');
    await clock.step(STEP_BACK_MS);
    try {
      const reused = await refresh(gw.url, first.refresh);
      assert.equal(reused.status, 401, 'the replayed token is refused');
      const owner = await refresh(gw.url, rotated.refresh!);
      assert.equal(owner.status, 401, 'the reuse revoked the session: the token the rotation gave works no more');
      // The log is written in batches (a flush every 200 ms).
      await waitFor(() => gw.logs.some((l) => l.msg === 'Refresh Token Reused'), 'the reuse logged as one', 3_000);
    } finally {
      await clock.step(0);
    }
  });

  test(`${kind}: a concurrent refresh from a clock up to 3 s behind the rotation is still within the grace period`, { skip }, async () => {
    // The tolerance the fix keeps: gateways may differ by 5 s (README); a client's two racing refreshes, one to a
    // gateway whose clock is behind the other's, must not log the client out.
    const { gw, clock } = gateways[kind]!;
    const first = await registered(gw.url, `${kind}-skew`);
    const rotated = await refresh(gw.url, first.refresh);
    assert.equal(rotated.status, 200, 'the first rotation');
    await clock.step(-3_000);
    try {
      assert.equal((await refresh(gw.url, first.refresh)).status, 401, 'the racing refresh loses');
      const owner = await refresh(gw.url, rotated.refresh!);
      assert.equal(owner.status, 200, 'and the session lives on');
    } finally {
      await clock.step(0);
    }
  });
}
