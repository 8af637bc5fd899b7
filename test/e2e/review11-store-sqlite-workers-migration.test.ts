// A multi-worker gateway on the default SQLite user store. The primary allowed each worker 10 s to start, counting
// migration time for PostgreSQL only, while each worker migrated the SQLite store at its start: a store behind this
// build's schema (migrations 7 and 8 build indexes over the largest tables: 7 s for 1,500,000 sessions on a loaded
// 2-core machine, more for a larger store) got its workers killed as failed starts, restarted, killed again and given
// up on. The migration is made long here the cheap way: another connection holds the file's write lock, which
// migrate() waits for (up to 60 s), past the start deadline. Now the primary migrates before it forks a worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { runCli, spawnGateway, tempDataDir, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { sqliteAuthConfig } from '../helpers/sqlite-store-gateway.js';
import { createClient, type TestClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { childrenOf, workerPids } from '../helpers/workers.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';
import { deleteRedisKeys, REDIS_URL, requireRedis, runId } from './ratelimit-helpers.js';

const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing
/** Several workers share revocations and buckets through Redis: keys of this run's own. */
const KEY_PREFIX = `portcullis-test:review11-workers-migration:${runId()}:`;
const REDIS = { url: REDIS_URL, key_prefix: KEY_PREFIX };

/** This build's schema version. */
const LATEST = sqliteMigrations.length;
/** The primary's start deadline for a worker before the fix (auth on SQLite, no plugins). */
const OLD_START_DEADLINE_MS = 10_000;

/** A store as a build of schema version 6 left it: migrations 1-6 applied, recorded, and in the header. */
function storeAtVersion6(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of sqliteMigrations.filter((m) => m.version <= 6)) {
      for (const sql of m.statements) db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, 0);
    }
    db.pragma('user_version = 6');
  } finally {
    db.close();
  }
}

/** The gateway processes (node …/portcullis.js) this test process spawned, and their workers. */
function spawnedWorkers(): number[] {
  return childrenOf(process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('portcullis.js');
      } catch {
        return false;
      }
    })
    .flatMap((pid) => workerPids(pid));
}

/**
 * Another connection takes the file's write lock, as a long migration holds it. It gives it back once `minMs` have
 * passed and, if workers were forked meanwhile, once they have waited past the old start deadline (so a loaded
 * machine's slow fork cannot make the test pass before the fix). Resolves once released.
 */
function holdWriteLockPastDeadline(file: string, minMs: number): Promise<void> {
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  const heldAt = performance.now();
  let workersSeenAt: number | undefined;
  return new Promise<void>((resolve) => {
    const look = (): void => {
      const now = performance.now();
      if (workersSeenAt === undefined && spawnedWorkers().length > 0) workersSeenAt = now;
      const pastDeadline = workersSeenAt === undefined || now - workersSeenAt > OLD_START_DEADLINE_MS + 1_000;
      if (now - heldAt >= minMs && pastDeadline) {
        other.exec('COMMIT');
        other.close();
        resolve();
        return;
      }
      setTimeout(look, 100);
    };
    look();
  });
}

describe('server.workers: 2 on a SQLite store that takes long to migrate', { skip: skipRedis }, () => {
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

  test('both workers start, none is killed at its start deadline, and the store is migrated', { timeout: 90_000 }, async () => {
    const dataDir = tempDataDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const file = join(dataDir, 'portcullis.db');
    storeAtVersion6(file);
    const released = holdWriteLockPastDeadline(file, OLD_START_DEADLINE_MS + 2_500);
    cleanups.push(() => released.then(() => undefined));
    const gw: GatewayProcess = await spawnGateway({ ...sqliteAuthConfig(backend), server: { workers: 2 }, redis: REDIS }, { dataDir, timeoutMs: 60_000 });
    cleanups.push(() => gw.cleanup());
    const started = (): number => gw.logs.filter((l) => l.msg === 'Gateway Started').length;
    await waitFor(() => started() === 2, 'both workers to start', 30_000);
    const timedOut = gw.logs.filter((l) => l.msg === 'Worker Start Timed Out' || l.msg === 'Worker Exited');
    assert.deepEqual(timedOut, [], 'no worker killed as a failed start');
    const res = await client.request(`${gw.url}/health`);
    assert.equal(res.status, 200, res.text);
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), LATEST);
      const applied = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      assert.deepEqual(applied, sqliteMigrations.map((m) => m.version), 'each migration applied once');
    } finally {
      db.close();
    }
  });

  test('a store the primary cannot migrate (a newer schema) ends the start at once: one line, exit 1, no worker forked', { timeout: 60_000 }, async () => {
    const dataDir = tempDataDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const file = join(dataDir, 'portcullis.db');
    storeAtVersion6(file);
    const db = new Database(file);
    db.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${LATEST + 1}, 'from a newer build', 0)`);
    db.close();
    const configFile = writeConfig({ ...sqliteAuthConfig(backend), server: { workers: 2 }, redis: REDIS });
    cleanups.push(() => rmSync(join(configFile, '..'), { recursive: true, force: true }));
    // Before: each worker failed its start on it, five restarts with backoff, then "Workers Failing At Start-up".
    const res = await runCli(['start', '--config', configFile], { PORTCULLIS_DATA_DIR: dataDir }, { boundMs: 30_000 });
    assert.equal(res.code, 1, `exit ${res.code}: ${res.stderr}${res.stdout.slice(-400)}`);
    assert.match(res.stderr, new RegExp(`schema version ${LATEST + 1}, newer than this build knows \\(${LATEST}\\)`));
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.doesNotMatch(res.stdout, /Worker Exited|Workers Failing At Start-up/, 'no worker was forked to fail on it');
  });
});
