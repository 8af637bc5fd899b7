// A Redis with `maxmemory` set and a `maxmemory-policy` other than noeviction never answers OOM: under memory pressure
// it evicts keys instead, and the gateway's revocations (and buckets) carry an expiry, so volatile-* policies (some
// managed services' default is volatile-lru) evict them first, while the lost-data marker, which has none, stays:
// a logged-out access token is accepted again and nothing notices. The README says to run noeviction; a gateway on
// such a Redis said nothing. Now the change poller looks at INFO memory once a minute (first at start, once Redis has
// answered) and warns `Redis May Evict Revocations` once per policy, naming it; nothing on noeviction, nothing without
// maxmemory. Our own redis-servers on free ports.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createRedisClient } from '@redis/client';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { IN_CI } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const EVENT = 'Redis May Evict Revocations';

const CASES = [
  { maxmemory: '64mb', policy: 'volatile-lru', warned: true },
  { maxmemory: '64mb', policy: 'noeviction', warned: false },
  { maxmemory: '0', policy: 'allkeys-lru', warned: false },
] as const;

for (const { maxmemory, policy, warned } of CASES) {
  test(`maxmemory ${maxmemory}, ${policy}: ${warned ? 'warned once, naming the policy' : 'no warning'}`, { skip }, async () => {
    const dir = scratchDir('review11-eviction');
    after(() => dir.remove());
    const port = await freePort();
    const redis = await RedisProcess.spawn(
      port,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--maxmemory', maxmemory, '--maxmemory-policy', policy],
      `${dir.path}/redis.log`,
    );
    after(() => redis.kill());
    const admin = createRedisClient({ url: redis.url });
    admin.on('error', () => undefined);
    await admin.connect();
    after(() => admin.destroy());
    const gw = await startInProcess({
      redis: { url: redis.url, key_prefix: `portcullis-test:review11-eviction-${policy}:` },
      jwt: { secret: TEST_SECRET },
      // No request is proxied: an upstream nobody listens on is enough.
      load_balancing: { upstreams: upstreams([1]) },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    });
    after(() => gw.close());

    // The poller reads the marker (one GET) once a second: three reads are the start's look and two more polls.
    const gets = async () => Number(/cmdstat_get:calls=(\d+)/.exec(String(await admin.sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);
    await waitFor('three polls of the marker', async () => (await gets()) >= 3, 10_000);
    const lines = gw.logs.filter((l) => l.msg === EVENT);
    if (!warned) {
      assert.equal(lines.length, 0, JSON.stringify(lines));
      return;
    }
    assert.equal(lines.length, 1, `one warning, not one a poll: ${JSON.stringify(lines)}`);
    assert.equal(lines[0]!.level, 40, 'warn');
    assert.equal(lines[0]!.maxmemory_policy, policy);
    assert.ok(!JSON.stringify(lines[0]).includes(String(port)), "the server's address is not in the line");
  });
}
