// A Redis URL with a user and no password (`redis://alice@host`): node-redis signs in only when a password is given,
// so the gateway connected as Redis's `default` user, with its rights instead of the ACL of the user the config
// names (checked here on a live server with ACL WHOAMI), or failed every command with NOAUTH when `default` is off.
// Now a config error, for a single server, a cluster seed and a sentinel alike, naming the key and never the URL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient as createRedisClient } from '@redis/client';
import { runCli } from '../helpers/gateway.js';
import { freePort } from '../kv/redis-helpers.js';
import { RedisProcess, requireRedisServer, run, scratchDir } from '../kv/redis-processes.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review3-redis-url-user-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
async function checkConfig(redis: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(dir, `proxy-${files++}.yaml`);
  writeFileSync(file, `admin: {enabled: false}\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\nredis: ${redis}\n`);
  return runCli(['check-config', '--config', file]);
}

const skip = await requireRedisServer();

test('the client signs in as the default user when the URL has a user and no password (why it is refused)', { skip }, async () => {
  const scratch = scratchDir('review3-url-user');
  const port = await freePort();
  const server = await RedisProcess.spawn(port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', scratch.path], join(scratch.path, 'redis.log'));
  try {
    await run('redis-cli', ['-p', String(port), 'ACL', 'SETUSER', 'alice', 'on', 'nopass', '~portcullis:*', '+@all'], 5_000);
    const whoami = async (url: string): Promise<unknown> => {
      const client = createRedisClient({ url });
      client.on('error', () => undefined);
      await client.connect();
      try {
        return await client.sendCommand(['ACL', 'WHOAMI']);
      } finally {
        client.destroy();
      }
    };
    assert.equal(await whoami(`redis://alice@127.0.0.1:${port}`), 'default', 'no password: not signed in as alice');
    assert.equal(await whoami(`redis://alice:any@127.0.0.1:${port}`), 'alice', 'the form the error asks for');
  } finally {
    await server.kill();
    scratch.remove();
  }
});

test('a user without a password is a config error in redis.url, redis.cluster and redis.sentinel.nodes', async () => {
  const cases: Array<[string, string]> = [
    ['{url: "redis://alice@127.0.0.1:6379"}', 'redis.url'],
    ['{url: "rediss://alice:@cache.example:6380/2"}', 'redis.url'],
    ['{cluster: ["redis://alice@127.0.0.1:7000"]}', 'redis.cluster[0]'],
    ['{sentinel: {name: m, nodes: ["redis://127.0.0.1:26379", "redis://bob@127.0.0.1:26380"]}}', 'redis.sentinel.nodes[1]'],
  ];
  for (const [redis, key] of cases) {
    const result = await checkConfig(redis);
    assert.equal(result.code, 1, redis);
    assert.ok(result.stderr.startsWith(`portcullis: config error: ${key}: names a user without a password`), `${redis}: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /alice|bob|127\.0\.0\.1|cache\.example/, 'the URL is not repeated');
  }
  for (const redis of ['{url: "redis://alice:s3cret@127.0.0.1:6379"}', '{url: "redis://:s3cret@127.0.0.1:6379"}', '{url: "redis://127.0.0.1:6379/1"}']) {
    const result = await checkConfig(redis);
    assert.equal(result.code, 0, `${redis}: ${result.stderr}`);
  }
});
