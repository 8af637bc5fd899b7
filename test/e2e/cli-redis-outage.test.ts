// The identity commands during a Redis outage, as a child process against a redis-server of our own (never the shared
// one on 6379) that is stopped and started again: commands that only read or add to the user store never connect to
// Redis; a revoking action is committed, printed and audited, then the notice goes to stderr and the exit code is 3
// (as the admin API's 202), and once Redis is back the same command answers 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { IN_CI } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { freePort, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';
import { openUserStore } from '../../src/store/open.js';
import { seedApiKey, seedUsers } from '../helpers/seeded-users.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: the outage suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const UPSTREAMS = { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] };
const PASSWORD = 'Correct-horse-battery-1';

/** The store as start-up or `portcullis migrate` leaves it. */
async function migratedDataDir(): Promise<string> {
  const dataDir = tempDataDir();
  const store = await openUserStore({ url: '', pool_size: 1 }, dataDir, { warn: () => undefined });
  await store.close();
  return dataDir;
}

function configFor(redisUrl: string): string {
  return writeConfig({
    load_balancing: UPSTREAMS,
    redis: { url: redisUrl, key_prefix: `portcullis-test:cli-outage:${runId()}:` },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
}

describe('read-only commands and commands that revoke nothing never connect to Redis', () => {
  let listener: Server;
  let connections = 0;
  let dataDir: string;
  before(async () => {
    dataDir = await migratedDataDir();
    // Not Redis: a port that counts who connects to it (and never answers).
    listener = createServer((socket) => {
      connections += 1;
      socket.on('error', () => undefined);
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
  });
  after(async () => {
    listener.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('users create, list, show, enable; api-keys create, list: exit 0, no connection', async () => {
    const port = (listener.address() as { port: number }).port;
    const configFile = configFor(`redis://127.0.0.1:${port}`);
    const run = (args: string[], stdin?: string) =>
      runPortcullis([...args, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir }, ...(stdin === undefined ? {} : { stdin }) });
    const created = await run(['users', 'create', 'reader@example.com'], `${PASSWORD}\n`);
    assert.equal(created.code, 0, created.stderr);
    for (const args of [['users', 'list'], ['users', 'show', 'reader@example.com'], ['users', 'enable', 'reader@example.com'], ['api-keys', 'create', 'svc'], ['api-keys', 'list']]) {
      const result = await run(args);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    assert.equal(connections, 0, 'nothing connected to redis.url');
  });
});

describe('revoking commands while Redis is down: committed, printed, the notice on stderr, exit 3', { skip: skipNoRedis }, () => {
  let redis: ThrowawayRedis;
  let dataDir: string;
  let configFile: string;
  const run = (args: string[], stdin?: string) =>
    runPortcullis([...args, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir }, ...(stdin === undefined ? {} : { stdin }) });

  before(async () => {
    dataDir = await migratedDataDir();
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    configFile = configFor(redis.url);
  });
  after(async () => {
    await redis?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('disable, logout, set-password, delete, api-keys revoke; read-only commands as usual; exit 0 once Redis is back', async () => {
    // What the commands act on, created in this process (`users create` and `api-keys create` run as processes in the
    // suite above): a process per user and key cost more than the outage under test.
    const emails = ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com'];
    const ids = await seedUsers(configFile, dataDir, emails, PASSWORD);
    const key = { id: await seedApiKey(configFile, dataDir, 'svc') };
    const id = (email: string): string => ids[emails.indexOf(email)]!;

    await redis.kill();
    const pending = (result: Awaited<ReturnType<typeof run>>, done: string, retry: string): void => {
      assert.equal(result.code, 3, result.stderr);
      assert.ok(result.stderr.includes(`portcullis: ${done}, but its revocation did not reach Redis (`), result.stderr);
      assert.match(result.stderr, /ECONNREFUSED/, 'the cause by its code');
      assert.ok(result.stderr.includes(`run "portcullis ${retry}`), result.stderr);
      assert.doesNotMatch(result.stderr, /redis:\/\/|Redis unavailable/);
      const audit = result.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'admin_action');
      assert.equal(audit?.revocation, 'pending', 'audited as pending');
    };

    // Each command waits up to 3 s for Redis before it reports the revocation pending; they touch different users,
    // so they run at once (as five operators might), not one 3 s wait after another.
    const [disabled, loggedOut, passwordSet, deleted, revoked] = await Promise.all([
      run(['users', 'disable', 'a@example.com', '--json']),
      run(['users', 'logout', 'b@example.com']),
      run(['users', 'set-password', 'c@example.com'], 'Another-horse-battery-2\n'),
      run(['users', 'delete', 'd@example.com']),
      run(['api-keys', 'revoke', key.id]),
    ]);
    pending(disabled, 'the user is disabled', `users disable ${id('a@example.com')}`);
    assert.equal((JSON.parse(disabled.stdout) as { disabled: boolean; revocation: string }).disabled, true, 'the result on stdout');
    assert.equal((JSON.parse(disabled.stdout) as { revocation: string }).revocation, 'pending');
    pending(loggedOut, 'the user is logged out', `users logout ${id('b@example.com')}`);
    pending(passwordSet, 'the password is set', `users set-password ${id('c@example.com')}`);
    pending(deleted, `user ${id('d@example.com')} is deleted`, `users delete ${id('d@example.com')}`);
    pending(revoked, `api key ${key.id} is revoked`, `api-keys revoke ${key.id}`);

    // Read-only commands need no Redis; the store holds every change.
    const listed = await run(['users', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const users = (JSON.parse(listed.stdout) as { users: { email: string; disabled: boolean }[] }).users;
    assert.deepEqual(users.map((u) => [u.email, u.disabled]).sort(), [['a@example.com', true], ['b@example.com', false], ['c@example.com', false]]);
    const show = await run(['users', 'show', 'a@example.com']);
    assert.equal(show.code, 0, show.stderr);
    const keys = await run(['api-keys', 'list', '--json']);
    assert.equal(keys.code, 0, keys.stderr);
    assert.deepEqual(JSON.parse(keys.stdout), { api_keys: [], next_cursor: null }, 'the revoked key is gone');

    // Redis back: the retry the notice names writes the revocation, exit 0.
    await redis.start();
    const retried = await run(['users', 'disable', id('a@example.com')]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.equal((await run(['users', 'logout', 'b@example.com'])).code, 0);
  });
});
