// Set-up shared by the tests of a spawned gateway's SQLite user store under fault (a file lost, made read-only, a
// guard's false alarm, a store check-config must judge): the auth config on one echo backend, node:test hooks that
// start and always stop the backend, client, gateway and data dir, and a freshly migrated store.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend, type TestBackend } from './backends.js';
import { spawnGateway, tempDataDir, upstreams, writeConfig, type ConfigInput, type GatewayProcess } from './gateway.js';
import { createClient, type TestClient } from './http.js';
import { FAST_ARGON2, TEST_SECRET } from './auth-gateway.js';
import { runPortcullis } from './identity.js';

/** Auth on (fast hashing, no auth rate limit) in front of `backend`; the admin port off unless `admin` is given. */
export function sqliteAuthConfig(backend: TestBackend, admin: ConfigInput = { enabled: false }): ConfigInput {
  return {
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    admin,
  };
}

export interface StoreBench {
  backend: TestBackend;
  client: TestClient;
  /** Run in reverse order in `after`, before the client and backend stop: gateways, data dirs. */
  cleanups: Array<() => Promise<void> | void>;
}

/** Hooks of a describe whose tests start their own gateways: an echo backend and a client, stopped after the cleanups. */
export function storeBenchHooks(): StoreBench {
  const s = { cleanups: [] } as unknown as StoreBench;
  before(async () => {
    s.backend = await startBackend('echo');
    s.client = createClient();
  });
  after(async () => {
    for (const c of s.cleanups.reverse()) await c();
    await s.client?.close();
    await s.backend?.stop();
  });
  return s;
}

export interface SpawnedStore {
  backend: TestBackend;
  gw: GatewayProcess;
  client: TestClient;
  dataDir: string;
  /** The SQLite file, portcullis.db in `dataDir`. */
  file: string;
  /** Undone first in `after`, whatever the test did or failed to do (an immutable file or a mount left behind). */
  undo: Array<() => void>;
}

/** Spawns a gateway on `backend` with `sqliteAuthConfig`, its store in `dataDir`; `admin` as sqliteAuthConfig's. */
export function spawnStoreGateway(backend: TestBackend, dataDir: string, admin?: ConfigInput): Promise<GatewayProcess> {
  return spawnGateway(sqliteAuthConfig(backend, admin), { dataDir });
}

/** Hooks of a describe with one spawned gateway (spawnStoreGateway) on a data dir of its own, for all its tests. */
export function spawnedStoreHooks(admin?: ConfigInput): SpawnedStore {
  const s = { undo: [] } as unknown as SpawnedStore;
  before(async () => {
    s.backend = await startBackend('echo');
    s.dataDir = tempDataDir();
    s.file = join(s.dataDir, 'portcullis.db');
    s.gw = await spawnStoreGateway(s.backend, s.dataDir, admin);
    s.client = createClient();
  });
  after(async () => {
    for (const undo of s.undo.reverse()) {
      try {
        undo();
      } catch {
        // already undone by the test
      }
    }
    await s.client?.close();
    await s.gw?.cleanup();
    await s.backend?.stop();
    if (s.dataDir !== undefined) rmSync(s.dataDir, { recursive: true, force: true });
  });
  return s;
}

export interface MigratedStore {
  dataDir: string;
  /** An auth config (admin port off, upstream port 1: nothing is proxied) naming no data dir: pass PORTCULLIS_DATA_DIR. */
  configFile: string;
  /** The SQLite file, portcullis.db in `dataDir`. */
  file: string;
}

/** A new data dir with a SQLite store `portcullis migrate` brought to this build's schema (asserted: exit 0). */
export async function migratedStore(): Promise<MigratedStore> {
  const dataDir = tempDataDir();
  const configFile = writeConfig({
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([1]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  const migrated = await runPortcullis(['migrate', '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });
  assert.equal(migrated.code, 0, migrated.stderr);
  return { dataDir, configFile, file: join(dataDir, 'portcullis.db') };
}
