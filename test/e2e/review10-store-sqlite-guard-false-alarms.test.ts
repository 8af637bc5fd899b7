// Legitimate work beside a running gateway must not be taken for a lost SQLite file (src/store/sqlite-file-guard.ts):
// a false alarm turns a healthy store into 503s until a restart. Each case does something an operator or SQLite itself
// does while the gateway runs, then registers a user: 201, and no 'User Store File Lost' line.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logsReadSoFar, runCli, spawnGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway.js';
import type { TestClient } from '../helpers/http.js';
import { sqliteAuthConfig as config, storeBenchHooks } from '../helpers/sqlite-store-gateway.js';
import { endGroup, workerPids } from '../helpers/workers.js';
import { waitFor } from '../helpers/wait.js';
import { TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';
import { deleteRedisKeys, REDIS_URL } from './ratelimit-helpers.js';

const PASSWORD = 'SecurePass123!';

/** Registers a user through `gw`; `fresh`: on a connection of its own (Connection: close), so any worker may take it. */
async function assertServes(client: TestClient, gw: GatewayProcess, what: string, fresh = false): Promise<void> {
  const headers: Record<string, string> = fresh ? { connection: 'close' } : {};
  const res = await client.postJson(`${gw.url}/auth/register`, { email: uniqueEmail(), password: PASSWORD }, headers);
  assert.equal(res.status, 201, `${what}: ${res.status} ${res.text}`);
  await logsReadSoFar(gw);
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'User Store File Lost'), [], what);
}

function sqlite(file: string, sql: string): void {
  execFileSync('sqlite3', [file, sql], { stdio: 'pipe' });
}

// The cases, and the rounds of the last, run side by side: each has its own gateway, data dir and Redis prefix.
describe('SQLite file guard: no false alarm', { concurrency: true }, () => {
  const s = storeBenchHooks();

  test('SQLite maintenance and the CLI beside a running gateway', async () => {
    const dataDir = tempDataDir();
    s.cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const gw = await spawnGateway(config(s.backend), { dataDir });
    s.cleanups.push(() => gw.cleanup());
    const file = join(dataDir, 'portcullis.db');
    await assertServes(s.client, gw, 'fresh data dir');
    sqlite(file, 'PRAGMA wal_checkpoint(TRUNCATE);');
    await assertServes(s.client, gw, 'wal_checkpoint(TRUNCATE)');
    sqlite(file, 'VACUUM;');
    await assertServes(s.client, gw, 'VACUUM');
    sqlite(file, 'PRAGMA journal_size_limit = 0; PRAGMA wal_checkpoint(RESTART);');
    await assertServes(s.client, gw, 'journal_size_limit');
    const env = { PORTCULLIS_DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET };
    for (const args of [['users', 'list', '--config', gw.configFile], ['migrate', '--config', gw.configFile], ['check-config', '--config', gw.configFile]]) {
      const r = await runCli(args, env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
      await assertServes(s.client, gw, args.join(' '));
    }
    // A second gateway on the same file (as server.workers: 2 has), stopped while the first runs.
    const second = await spawnGateway(config(s.backend), { dataDir });
    await assertServes(s.client, second, 'second gateway');
    await second.cleanup();
    await assertServes(s.client, gw, 'after the second gateway stopped');
  });

  test('a symlinked data dir', async () => {
    const real = tempDataDir();
    const links = mkdtempSync(join(tmpdir(), 'portcullis-link-'));
    const dataDir = join(links, 'data');
    symlinkSync(real, dataDir);
    s.cleanups.push(() => { rmSync(real, { recursive: true, force: true }); rmSync(links, { recursive: true, force: true }); });
    const gw = await spawnGateway(config(s.backend), { dataDir });
    s.cleanups.push(() => gw.cleanup());
    await assertServes(s.client, gw, 'symlinked data dir');
    sqlite(join(real, 'portcullis.db'), 'PRAGMA wal_checkpoint(TRUNCATE);');
    await assertServes(s.client, gw, 'symlinked, checkpointed');
  });

  test('server.workers: 2 on a brand-new data dir, a worker killed and restarted', async () => {
    const round = async (n: number): Promise<void> => {
      const dataDir = tempDataDir();
      const keyPrefix = `review10-guard-${process.pid}-${n}:`;
      s.cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      s.cleanups.push(async () => void (await deleteRedisKeys(REDIS_URL, keyPrefix)));
      const gw = await spawnGateway({ ...config(s.backend), server: { workers: 2 }, redis: { url: REDIS_URL, key_prefix: keyPrefix } }, { dataDir, group: true });
      s.cleanups.push(() => endGroup(gw));
      for (let i = 0; i < 6; i++) await assertServes(s.client, gw, `workers round ${n} request ${i}`);
      const [victim] = workerPids(gw.child.pid!);
      process.kill(victim!, 'SIGKILL');
      // Both first workers and the replacement have logged their start: the replacement listens.
      const started = (): number => gw.logs.filter((l) => l.msg === 'Gateway Started').length;
      await waitFor(() => started() === 3 && !workerPids(gw.child.pid!).includes(victim!), 'a new worker serving', 15_000);
      // Each on a fresh connection, which the primary hands to the workers in turn: the replacement serves some.
      for (let i = 0; i < 6; i++) await assertServes(s.client, gw, `workers round ${n} after restart ${i}`, true);
      await endGroup(gw);
    };
    await Promise.all([0, 1, 2].map(round));
  });
});
