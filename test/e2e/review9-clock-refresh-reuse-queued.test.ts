// Refresh-token reuse detection between gateways whose clocks differ by less than the 5 s they may (README,
// Authentication), when the refresh that arrives first waits for the user store. The grace period's lower bound
// (198207a: a rotation more than 5 s ahead of the presenting clock is a reuse, for clocks stepped back) was judged with
// the clock the refresh read when it arrived, before it waited for a pool connection and the family's lock. A client's
// refresh sent to gateway B (4.5 s behind A) that waited a second for B's busy pool, and its retry with the same token
// sent meanwhile to A, which rotated it, made B's refresh look 5.5 s "before" the rotation: a reuse, which revoked the
// session whose new token A had just handed the client. Before 198207a any rotation ahead of the clock was the grace
// period. Now the lower bound reads the clock when the decision is made (the rotation has committed by then, so only
// the clocks' difference, or a step, is left). PostgreSQL only: SQLite has one host's clock and no pool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { logsReadSoFar, spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { isolatedDatabase, lockWaiters, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { hashRefreshToken } from '../../src/auth/refresh-token.js';

const BEHIND_MS = -4_500; // B's clock, within the 5 s gateways may differ by
const skip = await requirePostgres();
const client = createClient();
let backend: TestBackend | undefined;
let db: IsolatedDatabase | undefined;
let a: GatewayProcess | undefined;
let b: GatewayProcess | undefined;
let clockB: SteppedClock | undefined;
const appB = uniqueApplicationName('r9-reuse-queued-b');

function config(url: string, poolSize: number): ConfigInput {
  return {
    load_balancing: { upstreams: upstreams([backend!.port]) },
    database: { url, pool_size: poolSize },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    admin: { enabled: false },
  };
}

before(async () => {
  if (skip) return;
  backend = await startBackend('echo');
  db = await isolatedDatabase();
  a = await spawnGateway(config(taggedUrl(db.name, uniqueApplicationName('r9-reuse-queued-a')), 4), { timeoutMs: 60_000 });
  clockB = steppedClock(BEHIND_MS);
  // One connection: a refresh waiting for a lock holds it, and the next one waits for the pool.
  b = await spawnGateway(config(taggedUrl(db.name, appB), 1), { env: clockB.env, timeoutMs: 60_000 });
});

after(async () => {
  await client.close();
  await b?.cleanup();
  await a?.cleanup();
  clockB?.remove();
  await db?.cleanup('u-');
  await backend?.stop();
});

async function registered(tag: string): Promise<string> {
  const res = await client.postJson(`${a!.url}/auth/register`, { email: `u-${tag}-${process.pid}@queued.example`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
  return res.json<{ refresh_token: string }>().refresh_token;
}

function refresh(url: string, token: string): Promise<{ status: number; refresh?: string }> {
  return client.postJson(`${url}/auth/refresh`, { refresh_token: token }).then((res) => ({
    status: res.status,
    ...(res.status === 200 ? { refresh: res.json<{ refresh_token: string }>().refresh_token } : {}),
  }));
}

test('a refresh that waited for the store on a gateway 4.5 s behind, racing its retry on another, does not revoke the session', { skip }, async () => {
  const other = await registered('other');
  const mine = await registered('mine');
  // B's one connection waits for another session's family lock, held by the test.
  const holder = new pg.Client({ connectionString: taggedUrl(db!.name, uniqueApplicationName('r9-reuse-queued-t')) });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(
      'SELECT 1 FROM refresh_token_families WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) FOR UPDATE',
      [hashRefreshToken(other)],
    );
    const blocked = refresh(b!.url, other);
    await waitFor(async () => (await lockWaiters(appB)).length > 0, 'B\'s connection waiting for the lock', 5_000, 20);
    // The client's refresh reaches B (reads B's clock, waits for B's pool) ...
    const first = refresh(b!.url, mine);
    await sleep(800);
    // ... and its retry reaches A, which rotates the token at once.
    const retry = await refresh(a!.url, mine);
    assert.equal(retry.status, 200, 'A rotates the token');
    await holder.query('ROLLBACK');
    assert.equal((await blocked).status, 200, 'the other session\'s refresh on B');
    assert.equal((await first).status, 401, 'B\'s refresh of the rotated token is refused (it lost the race)');
    // The session lives on: the token A gave the client still rotates.
    assert.equal((await refresh(a!.url, retry.refresh!)).status, 200, 'the session was not revoked');
    // A reuse line would be written with B's 401, and may still be in B's writer or pipe: read all B wrote first.
    await logsReadSoFar(b!);
    assert.ok(!b!.logs.some((l) => l.msg === 'Refresh Token Reused'), 'no reuse logged on B');
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end().catch(() => undefined);
  }
});
