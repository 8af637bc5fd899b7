// A logout writes the access token's revocation on a connection of its own to Redis, opened at the first one, and
// waits at most redis.command_timeout for it to connect (redis.ts #durableConnection). That wait was timed on
// Date.now(): a wall clock stepped back 10 minutes during it (NTP, a restored snapshot) held the logout 10 minutes
// instead of answering 503 after the timeout. Here Redis (the shared one, behind a forwarder of this test's) takes
// the gateway's first connection and then refuses every new one, so the revocation connection never comes up; the
// gateway's wall clock is stepped through test/helpers/clock-offset-import.mjs with a clock file (clock-step.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { sleep } from '../helpers/wait.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skip = await requireRedis();
const prefix = `portcullis-test:review9-clock-logout:${runId()}:`;
const client = createClient();
const sockets = new Set<Socket>();
let link: Server | undefined;
let backend: TestBackend | undefined;
let gw: GatewayProcess | undefined;
let clock: SteppedClock | undefined;

/** Forwards to the shared Redis until closeListener(): then new connections are refused, open ones go on. */
async function startLink(): Promise<number> {
  const redis = new URL(REDIS_URL);
  link = createServer((socket) => {
    const upstream = connect(Number(redis.port || 6379), redis.hostname);
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => link!.listen(0, '127.0.0.1', resolve));
  return (link.address() as AddressInfo).port;
}

before(async () => {
  if (skip) return;
  backend = await startBackend('echo');
  clock = steppedClock();
  gw = await spawnGateway(
    {
      redis: { url: `redis://127.0.0.1:${await startLink()}`, key_prefix: prefix, command_timeout: '2s' },
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    },
    { env: clock.env },
  );
});

after(async () => {
  for (const s of sockets) s.destroy();
  link?.close();
  await client.close();
  await gw?.cleanup();
  clock?.remove();
  await backend?.stop();
  if (!skip) await deleteRedisKeys(REDIS_URL, prefix);
});

test('a logout whose revocation connection cannot connect answers within the command timeout though the clock stepped back', { skip }, async () => {
  const res = await client.postJson(`${gw!.url}/auth/register`, { email: `u-${runId()}@clock.example`, password: 'correct horse battery' });
  assert.equal(res.status, 201, res.text);
  const token = res.json<{ access_token: string }>().access_token;
  const auth = { authorization: `Bearer ${token}` };
  // The revocation check goes through the connection Redis took; it answers.
  assert.equal((await client.request(`${gw!.url}/x`, { headers: auth })).status, 200);
  link!.close(); // no new connection from here on; the open one goes on

  const started = performance.now();
  const logout = client
    .request(`${gw!.url}/auth/logout`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ all_sessions: true }),
      timeoutMs: 8_000,
    })
    .catch((err: unknown) => err as Error);
  await sleep(500); // inside the 2 s wait for the revocation connection
  await clock!.step(-10 * 60_000);
  const answer = await logout;
  assert.ok(!(answer instanceof Error), `no answer ${Math.round(performance.now() - started)} ms after the logout`);
  assert.equal(answer.status, 503, answer.text);
  assert.ok(answer.headers['retry-after'] !== undefined, 'with Retry-After');
});
