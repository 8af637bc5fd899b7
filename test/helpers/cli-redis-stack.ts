// The identity CLI against a migrated SQLite store and a Redis of the test's own (killed and restarted by the test):
// what the pending-revocation tests of the users and api-keys commands start from.
import { rmSync } from 'node:fs';
import { openUserStore } from '../../src/store/open.js';
import { FAST_ARGON2, TEST_SECRET } from './auth-gateway.js';
import { tempDataDir, writeConfig } from './gateway.js';
import { runPortcullis, type CliResult } from './identity.js';
import { freePort, ThrowawayRedis } from '../kv/redis-helpers.js';
import { randomBytes } from 'node:crypto';

export interface CliRedisStack {
  readonly redis: ThrowawayRedis;
  readonly dataDir: string;
  readonly configFile: string;
  /** `portcullis <args> --config <configFile>` on this stack's data directory, `stdin` piped in. */
  run(args: readonly string[], stdin?: string): Promise<CliResult>;
  /** Kills the Redis and removes the data directory. */
  close(): Promise<void>;
}

/** `tag` names the Redis key prefix (with a run id), so runs never share keys. */
export async function startCliRedisStack(tag: string): Promise<CliRedisStack> {
  const dataDir = tempDataDir();
  // The store as start-up leaves it (migrated): the identity commands never migrate it themselves.
  await (await openUserStore({ url: '', pool_size: 1 }, dataDir, { warn: () => undefined })).close();
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  const configFile = writeConfig({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] },
    redis: { url: redis.url, key_prefix: `portcullis-test:${tag}:${randomBytes(4).toString('hex')}:` },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  return {
    redis,
    dataDir,
    configFile,
    run: (args, stdin) =>
      runPortcullis([...args, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir }, ...(stdin === undefined ? {} : { stdin }) }),
    close: async () => {
      await redis.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
