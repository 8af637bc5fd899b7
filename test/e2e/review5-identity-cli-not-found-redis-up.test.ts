// A revoking command (users disable|logout|delete|set-password, api-keys revoke) whose target does not exist, with
// Redis configured and up: it printed "not found" and then never exited. The command connects to Redis in the
// background from its start, and closing that connection before it was ready left node-redis's socket open (it
// finds no socket to end while one is being opened, and the connect then completes). Each must exit 1 at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPortcullis } from '../helpers/identity.js';
import { IN_CI } from '../helpers/http.js';
import { redisServerInstalled } from './ratelimit-helpers.js';
import { startCliRedisStack, type CliRedisStack } from '../helpers/cli-redis-stack.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

describe('a revoking command with an unknown target and Redis up', { skip: skipNoRedis }, () => {
  let stack: CliRedisStack;
  let dataDir: string;
  let configFile: string;

  before(async () => {
    stack = await startCliRedisStack('r5-cli-not-found');
    ({ dataDir, configFile } = stack);
  });
  after(async () => {
    await stack?.close();
  });

  // The timeout only turns a process that never exits into a failure; each exits within a few seconds.
  test('says "not found" and exits 1', { timeout: 120_000 }, async () => {
    const commands = [
      ['users', 'disable', 'nobody@example.com'],
      ['users', 'logout', 'nobody@example.com'],
      ['users', 'delete', 'nobody@example.com'],
      ['users', 'delete', '00000000-0000-4000-8000-000000000000'],
      ['api-keys', 'revoke', '0123456789abcdef'],
    ];
    const results = await Promise.all(
      commands.map((args) => runPortcullis([...args, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } })),
    );
    results.forEach((result, i) => {
      assert.equal(result.code, 1, `${commands[i]!.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /not found/);
    });
  });
});
