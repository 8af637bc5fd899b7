// A test file's gateways sharing one PostgreSQL and one Redis (README "Scaling out"): an isolated database, a Redis
// key prefix and an email domain of the run's own, an echo backend, and gateway processes spawned on one config
// (some with a wall clock shifted, test/helpers/clock-offset-import.mjs), all stopped and the rows and keys removed
// after the file's tests. Skips (or, under CI=true, fails) when PostgreSQL or Redis is missing.
import { after, before } from 'node:test';
import { startBackend, type TestBackend } from './backends.js';
import { spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from './gateway.js';
import { createClient, type TestClient } from './http.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from './postgres-db.js';
import {
  authConfig,
  deleteRedisKeys,
  REDIS_URL,
  requirePostgres,
  requireRedis,
  runId,
  SHARED_JWT_SECRET,
} from '../e2e/ratelimit-helpers.js';

const CLOCK_IMPORT = new URL('./clock-offset-import.mjs', import.meta.url).pathname;

export interface SharedStoresOptions {
  /** Added to the jwt section (the shared secret is always set: both sides must verify each other's tokens). */
  readonly jwt?: Record<string, unknown>;
  /** Further top-level sections (admin, ...). */
  readonly extra?: ConfigInput;
}

export interface SharedStores {
  readonly id: string;
  /** The run's email domain: users are registered as u-…@domain (the database's cleanup removes u-…). */
  readonly domain: string;
  readonly keyPrefix: string;
  /** A skip reason when PostgreSQL or Redis is missing, else false. */
  readonly skip: string | false;
  readonly client: TestClient;
  /** GET /x on `gw` (the echo backend) with `token` as bearer: the status (200 accepted, 401 refused). */
  status(gw: GatewayProcess, token: string): Promise<number>;
  /** The isolated database (after the file's first before hook). */
  db(): IsolatedDatabase;
  /** A gateway on the shared config, stopped after the file; `clockOffsetMs` shifts its whole process's wall clock. */
  spawn(options?: { clockOffsetMs?: number }): Promise<GatewayProcess>;
}

/**
 * Call at a test file's top level, before its own hooks: `name` tags the domain (`name-<id>.example`), the key
 * prefix (`portcullis-test:review7-<name>:<id>:`) and the database's application name.
 */
export async function sharedStoresHooks(name: string, options: SharedStoresOptions = {}): Promise<SharedStores> {
  const id = runId();
  const domain = `${name}-${id}.example`;
  const keyPrefix = `portcullis-test:review7-${name}:${id}:`;
  const skip = (await requireRedis()) || (await requirePostgres());
  const client = createClient();
  const gateways: GatewayProcess[] = [];
  let backend: TestBackend | undefined;
  let db: IsolatedDatabase | undefined;
  let config: ConfigInput | undefined;
  // Started by the before hook below or by the first spawn, whichever comes first: a file's own root-level before
  // hook may run without waiting for this one.
  let ready: Promise<void> | undefined;
  const setUp = (): Promise<void> => (ready ??= setUpOnce());

  before(async () => {
    if (!skip) await setUp();
  });

  async function setUpOnce(): Promise<void> {
    backend = await startBackend('echo');
    db = await isolatedDatabase();
    config = {
      database: { url: taggedUrl(db.name, uniqueApplicationName(name)), pool_size: 4 },
      redis: { url: REDIS_URL, key_prefix: keyPrefix },
      jwt: { secret: SHARED_JWT_SECRET, ...options.jwt },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: { auth: authConfig(), rate_limit: { enabled: false, auth: { enabled: false } } },
      ...options.extra,
    };
  }

  after(async () => {
    await client.close();
    if (skip) return;
    await Promise.allSettled(gateways.map((g) => g.cleanup()));
    await backend?.stop();
    await db?.cleanup('u-');
    await deleteRedisKeys(REDIS_URL, keyPrefix);
  });

  return {
    id,
    domain,
    keyPrefix,
    skip,
    client,
    async status(gw, token) {
      return (await client.request(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })).status;
    },
    db() {
      if (db === undefined) throw new Error('the shared stores are not set up yet (or PostgreSQL/Redis is missing)');
      return db;
    },
    async spawn(spawnOptions = {}) {
      if (!skip) await setUp();
      if (config === undefined) throw new Error('the shared stores are not set up yet (or PostgreSQL/Redis is missing)');
      const offset = spawnOptions.clockOffsetMs;
      const env =
        offset === undefined
          ? undefined
          : { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_IMPORT}`.trim(), PORTCULLIS_TEST_CLOCK_OFFSET_MS: String(offset) };
      const gw = await spawnGateway(config, env === undefined ? {} : { env });
      gateways.push(gw);
      return gw;
    },
  };
}
