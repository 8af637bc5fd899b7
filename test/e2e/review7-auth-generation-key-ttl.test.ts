// How long a user's revocation is remembered. Two gateway processes share PostgreSQL and Redis; B's wall clock runs
// 4 s ahead (within the 5 s tolerance, so A accepts B's tokens; test/helpers/clock-offset-import.mjs). Access tokens
// live 1 s here. A token B issued just before a log-out everywhere on A carries an issue time 4 s ahead, so A accepts
// it until about 4 s after a token A issued at the same moment. Since the token generation, such a token is refused
// by the revocation (it was accepted for its whole lifetime before), but only while the revocation is remembered:
// for the access-token lifetime plus the tolerance once, it was forgotten while the token was still accepted, and the
// killed session worked again at the end of its life.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import {
  authConfig,
  bearer,
  deleteRedisKeys,
  login,
  REDIS_URL,
  register,
  requirePostgres,
  requireRedis,
  runId,
  SHARED_JWT_SECRET,
} from './ratelimit-helpers.js';

const CLOCK_OFFSET_MS = 4_000;
const CLOCK_IMPORT = new URL('../helpers/clock-offset-import.mjs', import.meta.url).pathname;

const id = runId();
const domain = `genttl-${id}.example`;
const keyPrefix = `portcullis-test:review7-genttl:${id}:`;
const skip = (await requireRedis()) || (await requirePostgres());

const client = createClient();
let backend: TestBackend | undefined;
let db: IsolatedDatabase | undefined;
let a: GatewayProcess | undefined;
let b: GatewayProcess | undefined;

before(async () => {
  if (skip) return;
  backend = await startBackend('echo');
  db = await isolatedDatabase();
  const config = {
    database: { url: taggedUrl(db.name, uniqueApplicationName('genttl')), pool_size: 4 },
    redis: { url: REDIS_URL, key_prefix: keyPrefix },
    jwt: { secret: SHARED_JWT_SECRET, access_token_expiration: '1s' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: authConfig(), rate_limit: { enabled: false, auth: { enabled: false } } },
  };
  a = await spawnGateway(config);
  const options = `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_IMPORT}`.trim();
  b = await spawnGateway(config, { env: { NODE_OPTIONS: options, PORTCULLIS_TEST_CLOCK_OFFSET_MS: String(CLOCK_OFFSET_MS) } });
});

after(async () => {
  await client.close();
  if (skip) return;
  await Promise.allSettled([a?.cleanup(), b?.cleanup()]);
  await backend?.stop();
  await db?.cleanup('u-');
  await deleteRedisKeys(REDIS_URL, keyPrefix);
});

async function status(gw: GatewayProcess, token: string): Promise<number> {
  return (await client.request(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status;
}

test('a token issued just before a log-out everywhere by a host whose clock is ahead stays refused until it expires', { skip }, async () => {
  const user = await register(client, a!.url, `u-ttl@${domain}`);
  const early = await login(client, b!.url, user.email);
  const out = await client.postJson(`${a!.url}/auth/logout`, { all_sessions: true }, bearer(user));
  assert.equal(out.status, 200, out.text);
  const revokedAt = Date.now();
  assert.equal(await status(a!, early.accessToken), 401, 'refused after the log-out everywhere');
  // The revocation was remembered for 1 s + 5 s; A accepts B's token until about 4 s + 1 s + 5 s after its issue
  // (at least 9 s, `iat` being whole seconds). In between, refused only if the revocation is still remembered.
  await new Promise((r) => setTimeout(r, revokedAt + 7_500 - Date.now()));
  const late = await status(a!, early.accessToken);
  const elapsed = Date.now() - revokedAt;
  assert.ok(elapsed < 8_800, `checked ${elapsed} ms after the log-out: too late to tell (machine too slow)`);
  assert.equal(late, 401, 'still refused at the end of its life');
});
