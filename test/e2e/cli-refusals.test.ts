// The command line as a child process, on what it must refuse: configs start-up refuses (check-config says so too),
// identity commands against a store that is not there (never created by them), store failures named by the driver's
// code (never its message, a URL or a class name), and bad option values as bad usage (exit 2). Where a test holds
// several inputs to one refusal, one runs as a process (the exit code, the line on stderr) and the others through the
// function the command runs (checkConfig, matchReport), in this process: a CLI process each was most of this file's time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runCli, tempDataDir, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { TEST_SECRET } from '../helpers/auth-gateway.js';
import { openUserStore } from '../../src/store/open.js';
import { checkConfig } from '../../src/commands/check-config.js';
import { matchReport } from '../../src/commands/routes.js';
import { CommandUsageError } from '../../src/commands/usage.js';
import { runApiKeys } from '../../src/commands/api-keys.js';
import { runUsers } from '../../src/commands/users.js';
import { ConfigError, loadConfigFile, resolveDataDir } from '../../src/config/load.js';
import { SQLITE_FILE_NAME } from '../../src/store/sqlite.js';

const UPSTREAMS = { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] };
/** Nothing of a store failure's internals reaches the operator's terminal. */
const LEAKS = /StoreUnavailableError|KvUnavailableError|InvalidCursorError|Error\(|\n\s+at |hunter2/;

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * What `portcullis check-config` (run by `--config file` with `dataDir` as PORTCULLIS_DATA_DIR) says of a config, from
 * checkConfig in this process: 'ok', or the reason of the `portcullis: config error: <reason>` line it would print.
 */
async function checkedInProcess(configFile: string, dataDir = resolveDataDir()): Promise<string> {
  try {
    await checkConfig(configFile, dataDir);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
}

describe('check-config refuses what start-up refuses, with the same "key.path: reason"', () => {
  const check = async (input: Record<string, unknown>) => runCli(['check-config', '--config', writeConfig({ load_balancing: UPSTREAMS, ...input })]);
  const checked = async (input: Record<string, unknown>) => checkedInProcess(writeConfig({ load_balancing: UPSTREAMS, ...input }));

  test('a 17-byte jwt.secret', async () => {
    const result = await check({ jwt: { secret: 'x'.repeat(17) }, middleware: { auth: { enabled: true } } });
    assert.equal(result.code, 1, result.stdout);
    assert.equal(result.stderr, 'portcullis: config error: jwt.secret: must be at least 32 bytes\n');
  });

  test('an EdDSA key file that does not exist, with auth on (as start-up reads it)', async () => {
    const missing = join(tmpdir(), 'portcullis-no-such-dir', 'ed25519.pem');
    const reason = await checked({ jwt: { algorithm: 'EdDSA', private_key_file: missing }, middleware: { auth: { enabled: true } } });
    assert.equal(reason, `jwt.private_key_file: cannot read ${missing} (ENOENT)`);
    const noFile = await checked({ jwt: { algorithm: 'RS256' }, middleware: { auth: { enabled: true } } });
    assert.match(noFile, /^jwt\.private_key_file: is required with algorithm RS256$/);
  });

  test('a trusted_proxies CIDR beyond 32 bits', async () => {
    assert.match(await checked({ server: { trusted_proxies: ['10.0.0.0/99'] } }), /^server\.trusted_proxies\[0\]: must be an IP address or a CIDR/);
  });

  test('database.url and redis.url of another scheme, without repeating the URL', async () => {
    const db = await checked({ database: { url: 'mysql://app:hunter2@db.internal/portcullis' } });
    assert.match(db, /^database\.url: must be empty \(SQLite in the data dir\) or a postgres:\/\/ or postgresql:\/\/ URL$/);
    assert.equal(await checked({ redis: { url: 'foo://:hunter2@cache.internal:6379' } }), 'redis.url: must be a redis:// or rediss:// URL');
  });

  test('an access_log_file in a directory that does not exist, as start-up says it; nothing is created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-log-'));
    dirs.push(dir);
    const missing = join(dir, 'nodir', 'access.log');
    const configFile = writeConfig({ load_balancing: UPSTREAMS, logging: { access_log_file: missing } });
    const reason = `logging.access_log_file: cannot open ${missing} (ENOENT)`;
    assert.equal(await checkedInProcess(configFile), reason);
    const started = await runCli(['start', '--config', configFile]);
    assert.equal(started.code, 1, started.stdout);
    assert.ok(started.stderr.endsWith(`portcullis: config error: ${reason}\n`), started.stderr);
    // A directory in its place, or a parent that is a file: what open(2) says.
    assert.match(await checked({ logging: { access_log_file: dir } }), /cannot open .* \(EISDIR\)$/);
    writeFileSync(join(dir, 'file'), '');
    assert.match(await checked({ logging: { access_log_file: join(dir, 'file', 'access.log') } }), /cannot open .* \(ENOTDIR\)$/);
    // A file that can be created passes, and is not created by the check.
    const fine = join(dir, 'access.log');
    assert.equal(await checked({ logging: { access_log_file: fine } }), 'ok');
    assert.equal(existsSync(fine), false);
  });

  test('with auth on, a data dir start-up cannot create (the SQLite store, the generated jwt secret); nothing is created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-data-dir-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'file'), '');
    const blocked = join(dir, 'file', 'data');
    const auth = { middleware: { auth: { enabled: true } } };
    const sqlite = writeConfig({ load_balancing: UPSTREAMS, jwt: { secret: TEST_SECRET }, ...auth });
    assert.equal(await checkedInProcess(sqlite, blocked), `PORTCULLIS_DATA_DIR: cannot write the user store in ${blocked} (ENOTDIR)`);
    const started = await runCli(['start', '--config', sqlite], { PORTCULLIS_DATA_DIR: blocked });
    assert.equal(started.code, 1, 'start-up refuses it too');
    // On PostgreSQL the data dir holds only the generated secret: start-up's own message (auth/keys.ts reads the
    // file first, and reading below a file is ENOTDIR, not ENOENT).
    const postgres = writeConfig({ load_balancing: UPSTREAMS, database: { url: 'postgres://app@127.0.0.1:1/portcullis' }, jwt: { secret: '' }, ...auth });
    assert.equal(await checkedInProcess(postgres, blocked), `jwt.secret: empty, and ${join(blocked, 'jwt-secret')} cannot be read (ENOTDIR)`);
    // A data dir that can be created passes and is not created; auth off never looks at it.
    const fresh = join(dir, 'new', 'data');
    assert.equal(await checkedInProcess(sqlite, fresh), 'ok');
    assert.equal(existsSync(join(dir, 'new')), false);
    assert.equal(await checkedInProcess(writeConfig({ load_balancing: UPSTREAMS }), blocked), 'ok');
  });
});

describe('identity commands never create the store, and name the cause of a store failure', () => {
  let dataDir: string;
  let configFile: string;
  const config = (extra: Record<string, unknown> = {}) =>
    writeConfig({ load_balancing: UPSTREAMS, jwt: { secret: TEST_SECRET }, middleware: { auth: { enabled: true } }, ...extra });
  const cli = (args: string[], options: { dataDir?: string; config?: string } = {}) =>
    runPortcullis([...args, '--config', options.config ?? configFile], { env: { PORTCULLIS_DATA_DIR: options.dataDir ?? dataDir } });

  before(async () => {
    dataDir = tempDataDir();
    dirs.push(dataDir);
    configFile = config();
    // The store as start-up or `portcullis migrate` leaves it.
    const store = await openUserStore({ url: '', pool_size: 1 }, dataDir, { warn: () => undefined });
    await store.close();
  });

  test('a data dir that does not exist: exit 1 naming the file; nothing is created', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'portcullis-typo-'));
    dirs.push(parent);
    const typo = join(parent, 'dtaa');
    const noStore = new RegExp(`^no user store at ${join(typo, SQLITE_FILE_NAME)}: check PORTCULLIS_DATA_DIR`);
    const result = await cli(['api-keys', 'create', 'ci'], { dataDir: typo });
    assert.equal(result.code, 1, result.stdout);
    assert.equal(result.stdout, '', 'no key printed');
    assert.match(result.stderr, new RegExp(`^portcullis: ${noStore.source.slice(1)}`));
    assert.equal(existsSync(typo), false, 'the data dir was not created');
    // The listing commands, through the functions the command runs.
    const loaded = loadConfigFile(configFile);
    for (const [what, run] of [
      ['users list', () => runUsers(['list'], { json: false }, loaded, typo)],
      ['api-keys list', () => runApiKeys(['list'], { json: false }, loaded, typo)],
    ] as const) {
      await assert.rejects(run(), (err: Error) => noStore.test(err.message), what);
      assert.equal(existsSync(typo), false, `${what}: the data dir was not created`);
    }
  });

  test('a SQLite file without the schema: exit 1, "run portcullis migrate", still unmigrated', async () => {
    const empty = tempDataDir();
    dirs.push(empty);
    writeFileSync(join(empty, SQLITE_FILE_NAME), '');
    const result = await cli(['users', 'list'], { dataDir: empty });
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, /has no schema: run "portcullis migrate" first\n$/);
    const db = new Database(join(empty, SQLITE_FILE_NAME));
    assert.deepEqual(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get(), { n: 0 });
    db.close();
  });

  test('a migrated store works as before', async () => {
    const listed = await cli(['api-keys', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), { api_keys: [], next_cursor: null });
  });

  test('a locked SQLite file: SQLITE_BUSY, after the busy timeout', async () => {
    const holder = new Database(join(dataDir, SQLITE_FILE_NAME));
    holder.prepare('BEGIN IMMEDIATE').run();
    try {
      const result = await cli(['api-keys', 'create', 'locked']);
      assert.equal(result.code, 1, result.stdout);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^portcullis: user store unavailable: SQLITE_BUSY \(the database file is locked by another process\)\n$/m);
      assert.doesNotMatch(result.stderr, LEAKS);
    } finally {
      holder.prepare('ROLLBACK').run();
      holder.close();
    }
  });

  test('PostgreSQL that refuses connections: ECONNREFUSED, never the URL or its password', async () => {
    const result = await cli(['users', 'list'], { config: config({ database: { url: 'postgres://app:hunter2@127.0.0.1:1/portcullis' } }) });
    assert.equal(result.code, 1, result.stdout);
    assert.equal(result.stderr, 'portcullis: user store unavailable: ECONNREFUSED (connection refused)\n');
  });

  test('Redis that refuses connections: read-only commands need none; a revocation is pending, ECONNREFUSED, never the URL or its password', async () => {
    const withRedis = config({ redis: { url: 'redis://:hunter2@127.0.0.1:1' } });
    const listed = await cli(['api-keys', 'list'], { config: withRedis });
    assert.equal(listed.code, 0, listed.stderr);
    const created = await cli(['api-keys', 'create', 'refused-redis', '--json'], { config: withRedis });
    assert.equal(created.code, 0, created.stderr);
    const result = await cli(['api-keys', 'revoke', (JSON.parse(created.stdout) as { id: string }).id], { config: withRedis });
    assert.equal(result.code, 3, result.stdout);
    assert.match(result.stderr, /^portcullis: api key [0-9a-f]{16} is revoked, but its revocation did not reach Redis \(KvUnavailableError <- Error\(ECONNREFUSED\)\)/m);
    assert.doesNotMatch(result.stderr, /hunter2|redis:\/\/|127\.0\.0\.1|\n\s+at /);
  });

  test('bad option values are bad usage (exit 2), named as typed', async () => {
    const cursor = await cli(['users', 'list', '--cursor', 'junk']);
    assert.equal(cursor.code, 2, cursor.stderr);
    assert.match(cursor.stderr, /^portcullis: --cursor is not one that "users list" printed\n/);
    assert.doesNotMatch(cursor.stderr, LEAKS);
    // The others through the functions the command runs: a CommandUsageError is exit 2.
    const loaded = loadConfigFile(configFile);
    await assert.rejects(runApiKeys(['create', 'k'], { json: false, expiresIn: 'abc' }, loaded, dataDir), (err: Error) => err instanceof CommandUsageError && /^--expires-in: /.test(err.message));
    await assert.rejects(runUsers(['list'], { json: false, limit: 'abc' }, loaded, dataDir), CommandUsageError);
  });
});

describe('routes --match and -H: bad arguments are bad usage (exit 2), controls refused, never echoed', () => {
  const SAMPLE = 'config/routes.example.yaml';
  const match = (spec: string, ...headers: string[]) => runCli(['routes', '--config', SAMPLE, '--match', spec, ...headers.flatMap((h) => ['-H', h])]);
  /**
   * What `routes --match spec -H …` does with its arguments, from matchReport in this process: the usage refusal's
   * message (the command says `portcullis: <message>`, exit 2), or 'matched' (exit 0) / 'no route' (exit 3).
   */
  const matchedInProcess = (spec: string, ...headers: string[]): string => {
    try {
      return matchReport(loadConfigFile(SAMPLE), spec, headers).route === null ? 'no route' : 'matched';
    } catch (err) {
      assert.ok(err instanceof CommandUsageError, `expected a CommandUsageError, got ${String(err)}`);
      return err.message;
    }
  };

  test('a method alone or nothing is no request target', async () => {
    const result = await match('GET');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^portcullis: --match needs a request target/);
    assert.equal(result.stdout, '');
    for (const spec of ['', '   ']) assert.match(matchedInProcess(spec), /^--match needs a request target/, JSON.stringify(spec));
    assert.ok(!['matched', 'no route'].includes(matchedInProcess('G(ET /users/1')), 'G(ET is bad usage');
  });

  test('-H without "name: value"', async () => {
    const result = await match('GET https://api.example.com/users/1', 'nocolon');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^portcullis: -H takes "name: value"/);
    for (const header of [': value', 'bad name: x']) {
      assert.match(matchedInProcess('GET https://api.example.com/users/1', header), /^-H takes "name: value"/, header);
    }
    const ok = await match('GET https://api.example.com/users/1', 'x-api-version: 2');
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('a control character is refused and never reaches the terminal', async () => {
    for (const [spec, header] of [
      ['GET https://api.example.com/\u001b[2J/users', undefined],
      ['GET https://api.example.com/users/1\u009b31m', undefined],
      ['GET https://api.example.com/users/1', 'x-api-version: 2\u001b]0;pwned\u0007'],
    ] as const) {
      const result = header === undefined ? await match(spec) : await match(spec, header);
      assert.equal(result.code, 2, JSON.stringify(spec));
      assert.match(result.stderr, /must not contain control characters/);
      assert.doesNotMatch(result.stdout + result.stderr, /[\u001b\u0007\u009b]/);
    }
  });
});
