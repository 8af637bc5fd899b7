// The chaos run: a gateway on PostgreSQL and Redis under mixed load (register, login, refresh, proxy, logout) while
// its PostgreSQL sessions are terminated and its Redis is killed and restarted. Returns what it saw; asserts nothing.
import { randomBytes } from 'node:crypto';
import { startBackend } from '../helpers/backends.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient, type TestClient, type TestResponse } from '../helpers/http.js';
import { isolatedDatabase, taggedUrl, terminateSessions, uniqueApplicationName } from '../helpers/postgres-db.js';
import { freePort } from '../kv/redis-helpers.js';
import { PersistentRedis } from './redis-aof.js';

export interface ChaosOptions {
  /** How long the load runs while faults are injected. */
  readonly durationMs: number;
  /** Time between two faults (they alternate: PostgreSQL sessions, then Redis). */
  readonly faultEveryMs: number;
  /** How long Redis stays down per fault. */
  readonly redisDownMs: number;
}

/** What the run observed. Every list of problems is empty on a correct gateway. */
export interface ChaosReport {
  readonly requests: number;
  readonly byOperation: Record<string, Record<number, number>>;
  readonly pgSessionsKilled: number;
  readonly redisKills: number;
  /** Answers outside an operation's allowed statuses, or transport errors. */
  readonly unexpected: string[];
  /** A logged-out access or refresh token that was accepted afterwards. */
  readonly revokedAccepted: string[];
  /** Users registered (201) who could not log in after the run. */
  readonly lostUsers: string[];
  /** Documented outage behaviour not seen (fail closed on auth, fail open on the proxy limit). */
  readonly policyViolations: string[];
  /** The gateway process exited during the run. */
  readonly crashed: boolean;
  readonly gatewayStderr: string;
}

const PASSWORD = 'Chaos-Password-1';

/** Allowed statuses per operation (503 comes with Retry-After; 429 when a limit is reached). */
const ALLOWED: Record<string, readonly number[]> = {
  register: [201, 503],
  login: [200, 503],
  refresh: [200, 401, 503],
  proxy: [200, 503],
  revoked: [401, 503],
  logout: [200, 503],
};

interface Session {
  email: string;
  access: string;
  refresh: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const run = randomBytes(4).toString('hex');
  const appName = uniqueApplicationName('chaos');
  const db = await isolatedDatabase();
  const redis = new PersistentRedis(await freePort());
  const backend = await startBackend('echo');
  const client: TestClient = createClient({ connections: 16 });
  let gw: GatewayProcess | undefined;
  const byOperation: Record<string, Record<number, number>> = {};
  const unexpected: string[] = [];
  const revokedAccepted: string[] = [];
  const policyViolations: string[] = [];
  const users: string[] = [];
  const sessions: Session[] = [];
  const revoked: Array<{ access: string; refresh: string }> = [];
  let requests = 0;
  let pgSessionsKilled = 0;
  let redisKills = 0;
  try {
    await redis.start();
    gw = await spawnGateway({
      load_balancing: { upstreams: upstreams([backend.port]) },
      database: { url: taggedUrl(db.name, appName), pool_size: 4 },
      redis: { url: redis.url, key_prefix: `chaos:${run}:`, command_timeout: '300ms' },
      jwt: { secret: TEST_SECRET },
      middleware: {
        auth: { enabled: true, argon2: FAST_ARGON2, public_paths: ['/public/*'] },
        // Limits far above this load: the run is about faults, not throttling.
        rate_limit: {
          enabled: true,
          requests_per_minute: 600_000,
          burst_size: 100_000,
          auth: { requests_per_minute: 600_000, burst_size: 100_000, per_email_address: { requests_per_minute: 600_000, burst_size: 100_000 }, per_email: { requests_per_minute: 600_000, burst_size: 100_000 } },
        },
      },
      logging: { access_log: false },
      admin: { enabled: false },
    }, { timeoutMs: 60_000 });
    const url = gw.url;

    const send = async (op: string, make: () => Promise<TestResponse>): Promise<TestResponse | undefined> => {
      requests++;
      let res: TestResponse;
      try {
        res = await make();
      } catch (err) {
        unexpected.push(`${op}: ${(err as Error).message}`);
        return undefined;
      }
      const counts = (byOperation[op] ??= {});
      counts[res.status] = (counts[res.status] ?? 0) + 1;
      if (!ALLOWED[op]!.includes(res.status)) unexpected.push(`${op}: ${res.status} ${res.text.slice(0, 120)}`);
      if (res.status === 503 && !/^\d+$/.test(String(res.headers['retry-after']))) unexpected.push(`${op}: 503 without Retry-After`);
      return res;
    };
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });
    const pick = <T>(list: T[]): T | undefined => list[Math.floor(Math.random() * list.length)];
    const take = <T>(list: T[]): T | undefined => list.splice(Math.floor(Math.random() * list.length), 1)[0];

    // Some users before the faults begin.
    for (let i = 0; i < 6; i++) {
      const email = `chaos-${run}-seed${i}@example.com`;
      const res = await send('register', () => client.postJson(`${url}/auth/register`, { email, password: PASSWORD }));
      if (res?.status === 201) {
        users.push(email);
        const body = res.json<{ access_token: string; refresh_token: string }>();
        sessions.push({ email, access: body.access_token, refresh: body.refresh_token });
      }
    }

    let running = true;
    const loop = async (step: () => Promise<void>): Promise<void> => {
      while (running) {
        await step();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    let n = 0;
    const loops = [
      loop(async () => {
        const email = `chaos-${run}-u${n++}@example.com`;
        const res = await send('register', () => client.postJson(`${url}/auth/register`, { email, password: PASSWORD }));
        if (res?.status === 201) users.push(email);
      }),
      loop(async () => {
        const email = pick(users);
        if (email === undefined) return;
        const res = await send('login', () => client.postJson(`${url}/auth/login`, { email, password: PASSWORD }));
        if (res?.status === 200) {
          const body = res.json<{ access_token: string; refresh_token: string }>();
          sessions.push({ email, access: body.access_token, refresh: body.refresh_token });
        }
      }),
      loop(async () => {
        const session = take(sessions);
        if (session === undefined) return;
        const res = await send('refresh', () => client.postJson(`${url}/auth/refresh`, { refresh_token: session.refresh }));
        if (res?.status === 200) {
          const body = res.json<{ access_token: string; refresh_token: string }>();
          sessions.push({ ...session, access: body.access_token, refresh: body.refresh_token });
        } else if (res?.status === 503) {
          // Unknown whether the rotation committed before the failure: the old token may be spent. Keep the
          // session for proxying only (its access token is still valid) by pushing it back unchanged; a later
          // 401 on refresh is then expected.
          sessions.push(session);
        }
      }),
      loop(async () => {
        const session = pick(sessions);
        if (session !== undefined) await send('proxy', () => client.request(`${url}/p`, { headers: auth(session.access) }));
        const dead = pick(revoked);
        if (dead !== undefined) {
          const res = await send('revoked', () => client.request(`${url}/p`, { headers: auth(dead.access) }));
          if (res?.status === 200) revokedAccepted.push('access token accepted after logout');
          const again = await client.postJson(`${url}/auth/refresh`, { refresh_token: dead.refresh }).catch(() => undefined);
          requests++;
          if (again?.status === 200) revokedAccepted.push('refresh token rotated after logout');
        }
      }),
      loop(async () => {
        if (sessions.length < 4) return;
        const session = take(sessions);
        if (session === undefined) return;
        const res = await send('logout', () =>
          client.postJson(`${url}/auth/logout`, { refresh_token: session.refresh }, auth(session.access)),
        );
        if (res?.status === 200) revoked.push({ access: session.access, refresh: session.refresh });
        await new Promise((r) => setTimeout(r, 50));
      }),
    ];

    const faults = (async () => {
      const started = Date.now();
      let turn = 0;
      while (Date.now() - started < options.durationMs) {
        await new Promise((r) => setTimeout(r, options.faultEveryMs));
        if (turn++ % 2 === 0) {
          pgSessionsKilled += await terminateSessions(appName);
          continue;
        }
        await redis.kill();
        redisKills++;
        await new Promise((r) => setTimeout(r, Math.min(400, options.redisDownMs)));
        // Documented behaviour while Redis is down: auth fails closed, the proxy limit fails open.
        const session = pick(sessions);
        if (session !== undefined) {
          const res = await client.request(`${url}/p`, { headers: auth(session.access) }).catch(() => undefined);
          if (res?.status !== 503) policyViolations.push(`token during Redis outage: ${res?.status} (revocation list unreadable: 503)`);
        }
        const login = await client.postJson(`${url}/auth/login`, { email: users[0], password: PASSWORD }).catch(() => undefined);
        if (login?.status !== 503) policyViolations.push(`login during Redis outage: ${login?.status} (auth buckets deny: 503)`);
        const open = await client.request(`${url}/public/x`).catch(() => undefined);
        if (open?.status !== 200) policyViolations.push(`public path during Redis outage: ${open?.status} (proxy limit allows: 200)`);
        await new Promise((r) => setTimeout(r, Math.max(0, options.redisDownMs - 400)));
        await redis.start();
      }
    })();
    await faults;
    running = false;
    await Promise.all(loops);

    // After the faults: everything works again, no user is lost, no logged-out token is accepted.
    await waitUntil(async () => (await client.request(`${url}/public/ready-check`).catch(() => undefined))?.status === 200);
    await waitUntil(async () => {
      const r = await client.postJson(`${url}/auth/login`, { email: users[0], password: PASSWORD }).catch(() => undefined);
      return r?.status === 200;
    });
    const lostUsers: string[] = [];
    for (const email of users) {
      const res = await client.postJson(`${url}/auth/login`, { email, password: PASSWORD }).catch(() => undefined);
      if (res?.status !== 200) lostUsers.push(`${email}: ${res?.status}`);
    }
    for (const dead of revoked) {
      const res = await client.request(`${url}/p`, { headers: auth(dead.access) }).catch(() => undefined);
      if (res?.status !== 401) revokedAccepted.push(`after the run, a logged-out access token got ${res?.status}`);
      const again = await client.postJson(`${url}/auth/refresh`, { refresh_token: dead.refresh }).catch(() => undefined);
      if (again?.status !== 401) revokedAccepted.push(`after the run, a logged-out refresh token got ${again?.status}`);
    }
    const crashed = gw.child.exitCode !== null || gw.child.signalCode !== null;
    return {
      requests,
      byOperation,
      pgSessionsKilled,
      redisKills,
      unexpected,
      revokedAccepted,
      lostUsers,
      policyViolations,
      crashed,
      gatewayStderr: gw.stderr(),
    };
  } finally {
    await client.close();
    await gw?.cleanup();
    await backend.stop();
    await redis.dispose();
    await db.cleanup(`chaos-${run}-`);
  }
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('the gateway did not recover within 15 s after the faults');
    await new Promise((r) => setTimeout(r, 100));
  }
}
