// What the identity commands run against: the configured user store and revocation store, as the CLI actor.
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { createPasswordHasher } from '../auth/password.js';
import { createAuthSchemas } from '../auth/validation.js';
import { acceptWindowMs } from '../auth/tokens.js';
import { openUserStore } from '../store/open.js';
import type { UserStore } from '../store/user-store.js';
import { KvUnavailableError, type KvStore } from '../kv/kv-store.js';
import { createRedisKvStore, type RedisKvStore } from '../kv/redis.js';
import { IdentityAdmin } from '../identity/admin-service.js';
import { auditSink } from '../identity/audit.js';

/** An open command context; `close()` releases the store connections. */
export interface CommandContext {
  readonly admin: IdentityAdmin;
  close(): Promise<void>;
}

/** How long the CLI waits for Redis to answer before refusing to act (a revocation must not be half done). */
const REDIS_READY_TIMEOUT_MS = 3_000;

/**
 * Opens the store (which must exist and be migrated: StoreNotReadyError otherwise) and, when `redis.url` is set, Redis: an action then reaches gateways on Redis at once.
 * With the memory store, gateways learn of it from the change log within a second. Audit lines go to stderr as
 * JSON, so stdout holds only the command's output.
 */
export async function openCommandContext(config: Config, dataDir: string): Promise<CommandContext> {
  const logger = pino({ level: 'info', base: { service: 'portcullis', component: 'cli' } }, pino.destination({ fd: 2, sync: true }));
  // Never created or migrated here: only start and migrate may (a mistyped data dir would get a new, empty store).
  const store: UserStore = await openUserStore(config.database, dataDir, logger, { create: false });
  let kv: KvStore | undefined;
  try {
    if (config.redis.url !== '') {
      const redis = createRedisKvStore({ url: config.redis.url, commandTimeoutMs: config.redis.command_timeout, keyPrefix: config.redis.key_prefix });
      kv = redis;
      await waitForRedis(redis);
    }
    const auth = config.middleware.auth;
    const admin = new IdentityAdmin({
      store,
      ...(kv ? { kv } : {}),
      passwords: await createPasswordHasher(auth.argon2),
      schemas: createAuthSchemas(auth),
      revocationTtlMs: acceptWindowMs(config.jwt.access_token_expiration),
      actor: 'cli',
      audit: auditSink(logger),
    });
    return {
      admin,
      async close() {
        await Promise.allSettled([store.close(), kv?.close()]);
      },
    };
  } catch (err) {
    await Promise.allSettled([store.close(), kv?.close()]);
    throw err;
  }
}

/**
 * Redis connects in the background; commands fail fast until it does. Waits (bounded) for a PING to answer. On
 * giving up, the failure carries the connection's own error code (ECONNREFUSED, ENOTFOUND…) when there was one:
 * the last PING only says it timed out or found the client closed.
 */
async function waitForRedis(kv: RedisKvStore): Promise<void> {
  const deadline = Date.now() + REDIS_READY_TIMEOUT_MS;
  for (;;) {
    try {
      await kv.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new KvUnavailableError({ cause: connectionFailure(kv) ?? err });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The connection's last error as a cause holding only its code; `lastError` is "Class(CODE)" (describeCause). */
function connectionFailure(kv: RedisKvStore): Error | undefined {
  const code = /\(([A-Za-z0-9_]+)\)$/.exec(kv.lastError ?? '')?.[1];
  return code === undefined ? undefined : Object.assign(new Error('redis connection failed'), { code });
}
