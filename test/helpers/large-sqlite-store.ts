// A SQLite user store grown large, under a spawned gateway, for the *.scale.ts tests (`npm run test:scale`): the store
// migrated by this build, rows written straight into its tables, a gateway with auth on in front of an echo backend,
// and the slowest of a stream of ordinary authenticated requests while the gateway works through the rows.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { FAST_ARGON2, TEST_SECRET, bearer, register } from './auth-gateway.js';
import { startBackend, type TestBackend } from './backends.js';
import { spawnGateway, tempDataDir, upstreams, type ConfigInput, type GatewayProcess } from './gateway.js';
import { createClient } from './http.js';
import { sleep } from './wait.js';
import { openSqliteUserStore, SQLITE_FILE_NAME } from '../../src/store/sqlite.js';

export type Db = import('better-sqlite3').Database;
export const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');

/** A data dir whose store this build migrated, then `seed` wrote into (one connection, closed before the gateway opens it). */
export async function seededSqliteStore(seed: (db: Db, now: number) => void): Promise<{ dataDir: string; file: string }> {
  const dataDir = tempDataDir();
  const store = openSqliteUserStore({ dataDir });
  await store.migrate();
  await store.close();
  const file = join(dataDir, SQLITE_FILE_NAME);
  const seeding = new Database(file);
  seed(seeding, Date.now());
  seeding.close();
  return { dataDir, file };
}

/** `n` users, ids `00000000-0000-4000-8000-<i>`, emails `seed-<i>@example.com`, created a day ago. */
export function seedUsers(db: Db, n: number, now: number): void {
  db.prepare(
    `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
     INSERT INTO users (id, email, password_hash, created_at)
     SELECT printf('00000000-0000-4000-8000-%012d', i), printf('seed-%d@example.com', i), 'x', :now - 86400000 - i FROM s`,
  ).run({ n, now });
}

export interface LargeStoreGateway {
  readonly gw: GatewayProcess;
  readonly client: ReturnType<typeof createClient>;
  /** One authenticated request after another until `keepGoing` says stop (checked after each): the slowest, in ms. */
  slowestWhile(keepGoing: () => boolean): Promise<{ slowest: number; served: number }>;
  /** Stops the gateway, the backend and the client, and removes the data dir. */
  close(): Promise<void>;
}

/**
 * A spawned gateway on `dataDir` with auth on (the brute-force limits off), the janitor every `cleanupInterval`, and
 * `extra` config keys on top (admin, logging); a user registered, whose token the measured requests carry.
 */
export async function startLargeStoreGateway(dataDir: string, cleanupInterval: string, extra: ConfigInput = {}): Promise<LargeStoreGateway> {
  let backend: TestBackend | undefined;
  let gw: GatewayProcess | undefined;
  const client = createClient();
  const close = async (): Promise<void> => {
    await client.close();
    await gw?.cleanup();
    await backend?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    backend = await startBackend('echo');
    gw = await spawnGateway(
      {
        load_balancing: { upstreams: upstreams([backend.port]) },
        jwt: { secret: TEST_SECRET },
        middleware: {
          auth: { enabled: true, argon2: FAST_ARGON2, session_cleanup_interval: cleanupInterval },
          rate_limit: { auth: { enabled: false } },
        },
        admin: { enabled: false },
        ...extra,
      },
      { dataDir },
    );
    const started = gw;
    const session = await register({ client, url: started.url });
    const slowestWhile = async (keepGoing: () => boolean): Promise<{ slowest: number; served: number }> => {
      let slowest = 0;
      let served = 0;
      for (;;) {
        const sent = performance.now();
        const res = await client.request(`${started.url}/api/orders`, { headers: bearer(session.access_token) });
        slowest = Math.max(slowest, performance.now() - sent);
        if (res.status !== 200) throw new Error(`a proxied request was answered ${res.status}: ${res.text}`);
        served++;
        if (!keepGoing()) break;
        await sleep(10);
      }
      return { slowest, served };
    };
    return { gw: started, client, slowestWhile, close };
  } catch (err) {
    await close();
    throw err;
  }
}
