// A revoking CLI command (`users disable`) on a gateway fleet whose Redis is a Cluster or a Sentinel-managed master.
// The CLI connected to Redis only when `redis.url` was set: with `redis.cluster` or `redis.sentinel` it committed the
// action, exited 0 and wrote nothing to Redis, so gateways learnt of it only from the user store's change log (within
// a second, on their poll) rather than at once, as the README promises for a fleet on Redis. Now the revocation is on
// the Redis the gateways read, whichever way it is deployed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { seedUsers } from '../helpers/seeded-users.js';
import { openUserStore } from '../../src/store/open.js';
import { redisCommand } from '../kv/redis-command.js';
import { freePort, uniquePrefix } from '../kv/redis-helpers.js';
import { RedisProcess, requireRedisServer, scratchDir, ThrowawaySentinel } from '../kv/redis-processes.js';

const skip = await requireRedisServer();
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/**
 * Seeds a user in a fresh store whose config names `redis` (and `prefix`), disables it with the CLI, and returns the
 * CLI's result with the user's id.
 */
async function disableWithCli(redis: Record<string, unknown>): Promise<{ code: number | null; stderr: string; id: string }> {
  const dataDir = tempDataDir();
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const store = await openUserStore({ url: '', pool_size: 1 }, dataDir, { warn: () => undefined });
  await store.close();
  const configFile = writeConfig({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] },
    redis,
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  const [id] = await seedUsers(configFile, dataDir, ['fleet@example.com'], 'Correct-horse-battery-1');
  const result = await runPortcullis(['users', 'disable', 'fleet@example.com', '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });
  return { code: result.code, stderr: result.stderr, id: id! };
}

/** The keys under `prefix` on the server at `port`. */
async function keysUnder(port: number, prefix: string): Promise<string[]> {
  return (await redisCommand(port, ['KEYS', `${prefix}*`])).split('\n').filter((k) => k !== '');
}

test('redis.cluster: users disable writes the revocation to the Cluster, not only to the change log', { skip }, async () => {
  const dir = scratchDir('review13-cli-cluster');
  cleanups.push(() => dir.remove());
  const port = await freePort();
  const bus = await freePort();
  const node = await RedisProcess.spawn(port, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path,
    '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir.path, 'nodes.conf'),
  ], join(dir.path, `${port}.log`));
  cleanups.push(() => node.kill());
  await redisCommand(port, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
  await waitFor(async () => (await redisCommand(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'), 'the one-node cluster to be ok', 10_000);

  const prefix = uniquePrefix('review13-cli-cluster');
  const { code, stderr, id } = await disableWithCli({ cluster: [`redis://127.0.0.1:${port}`], key_prefix: prefix });
  assert.equal(code, 0, stderr);
  const keys = await keysUnder(port, prefix);
  assert.ok(keys.some((k) => k.startsWith(`${prefix}revoked-subject:`) && k.includes(id)), `keys under the prefix: ${JSON.stringify(keys)}`);
});

test('redis.sentinel: users disable writes the revocation to the master the sentinels name', { skip }, async () => {
  const sentinel = await ThrowawaySentinel.start(5_000);
  cleanups.push(() => sentinel.stop());
  const prefix = uniquePrefix('review13-cli-sentinel');
  const { code, stderr, id } = await disableWithCli({ sentinel: sentinel.target, key_prefix: prefix });
  assert.equal(code, 0, stderr);
  const keys = await keysUnder(sentinel.master.port, prefix);
  assert.ok(keys.some((k) => k.startsWith(`${prefix}revoked-subject:`) && k.includes(id)), `keys under the prefix: ${JSON.stringify(keys)}`);
});
