// A multi-worker gateway's workers start from the environment the primary accepted (.env included), the one its
// SQLite migration (src/primary-migration.ts) used. But each worker also ran cli.ts's own `.env` read at its start,
// which sets every variable its environment lacks: a PORTCULLIS_DATA_DIR line added to .env after the start (no
// reload, or one refused) reached the next worker restarted (a crash), which then created, migrated and served a new,
// empty user store in the other directory beside siblings on the old one (users registered before: 401), and a
// LOG_LEVEL line made it log at that level alone, against the
// README ("a .env change to LOG_LEVEL, PORTCULLIS_DATA_DIR or what plugins read changes no worker, restarted or not").
// And after a reload the primary accepted (.env's PORTCULLIS_DATA_DIR changed, the config file not), every worker
// restarted from then on was forked with the new PORTCULLIS_DATA_DIR, while a single process keeps the data dir it
// started with. Now the primary hands each worker the data dir it migrated at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { sqliteAuthConfig } from '../helpers/sqlite-store-gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { uniqueEmail } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/wait.js';
import { workerPids } from '../helpers/workers.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing
const KEY_PREFIX = `portcullis-test:review11-review-dotenv-data-dir:${runId()}:`;
const PASSWORD = 'SecurePass123!';

describe('server.workers: 2, a .env line added after the start', { skip: skipRedis }, () => {
  let backend: TestBackend;
  let client: TestClient;
  const cleanups: Array<() => Promise<void> | void> = [];
  before(async () => {
    backend = await startBackend('echo');
    client = createClient();
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await client?.close();
    await backend?.stop();
    await deleteRedisKeys(REDIS_URL, KEY_PREFIX);
  });

  /**
   * Starts a 2-worker gateway in a fresh working directory (store at ./data), registers a user, appends
   * PORTCULLIS_DATA_DIR=./other and `more` to .env, then `afterEdit` (nothing, or a reload), then kills a worker: the
   * replacement must start (its Gateway Started at info, the level the gateway runs at) on the same store, and
   * nothing may be made at ./other.
   */
  async function restartAfterDotEnvEdit(more: string, afterEdit: (gw: GatewayProcess) => Promise<void>): Promise<void> {
    // The gateway's working directory: its .env, and its store at ./data (no PORTCULLIS_DATA_DIR anywhere at start).
    const cwd = mkdtempSync(join(tmpdir(), 'portcullis-dotenv-cwd-'));
    cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
    writeFileSync(join(cwd, '.env'), '# no PORTCULLIS_DATA_DIR at start\n');
    const gw: GatewayProcess = await spawnGateway(
      { ...sqliteAuthConfig(backend), server: { workers: 2 }, redis: { url: REDIS_URL, key_prefix: KEY_PREFIX } },
      { cwd, env: { PORTCULLIS_DATA_DIR: undefined, LOG_LEVEL: undefined }, timeoutMs: 30_000 },
    );
    cleanups.push(() => gw.cleanup());
    const started = (): number => gw.logs.filter((l) => l.msg === 'Gateway Started').length;
    await waitFor(() => started() === 2, 'both workers to start', 20_000);
    assert.ok(existsSync(join(cwd, 'data', 'portcullis.db')), 'the store at ./data');
    const email = uniqueEmail();
    const registered = await client.postJson(`${gw.url}/auth/register`, { email, password: PASSWORD });
    assert.equal(registered.status, 201, registered.text);

    // An operator edits .env (to take effect at the next restart of the gateway); then a worker crashes.
    appendFileSync(join(cwd, '.env'), `PORTCULLIS_DATA_DIR=./other\n${more}`);
    await afterEdit(gw);
    const [crashed] = workerPids(gw.child.pid!);
    assert.ok(crashed !== undefined, 'a worker');
    process.kill(crashed, 'SIGKILL');
    // Before the fix (no reload), a LOG_LEVEL=warn line added too made the replacement log at warn: no such line.
    await waitFor(() => started() === 3, 'the replacement worker to start (its Gateway Started, at info)', 30_000);

    // Before the fix: ./other/portcullis.db created and migrated by the replacement, and logins it answered were 401.
    assert.equal(existsSync(join(cwd, 'other')), false, 'no store made in the directory the new .env line names');
    // Each on a connection of its own: the primary hands connections to the workers by turns.
    for (let i = 0; i < 6; i++) {
      const own = createClient({ connections: 1 });
      try {
        const login = await own.postJson(`${gw.url}/auth/login`, { email, password: PASSWORD });
        assert.equal(login.status, 200, `login ${i}: ${login.text}`);
      } finally {
        await own.close();
      }
    }
  }

  test('no reload: a restarted worker reads none of the lines added to .env', { timeout: 60_000 }, () =>
    restartAfterDotEnvEdit('LOG_LEVEL=warn\n', async () => undefined));

  test('a reload the primary accepts: a worker restarted after it keeps the data dir of the start', { timeout: 60_000 }, () =>
    restartAfterDotEnvEdit('', async (gw) => {
      const reloaded = (): number => gw.logs.filter((l) => l.msg === 'Config Reloaded').length;
      gw.signal('SIGHUP');
      await waitFor(() => reloaded() === 2, 'both workers to apply the reload', 20_000);
    }));
});
