// What the identity commands run against: the configured user store and revocation store, as the CLI actor.
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { createPasswordHasher } from '../auth/password.js';
import { createAuthSchemas } from '../auth/validation.js';
import { acceptWindowMs } from '../auth/tokens.js';
import { openUserStore } from '../store/open.js';
import type { UserStore } from '../store/user-store.js';
import { KvUnavailableError, type KvStore } from '../kv/kv-store.js';
import type { RedisKvStore } from '../kv/redis.js';
import { openRedisKvStore } from '../kv/open.js';
import { IdentityAdmin } from '../identity/admin-service.js';
import { auditSink } from '../identity/audit.js';

/** An open command context; `close()` releases the store connections. */
export interface CommandContext {
  readonly admin: IdentityAdmin;
  close(): Promise<void>;
}

/** Which stores a command needs beyond the user store. */
export interface CommandNeeds {
  /**
   * The command revokes credentials (disable, logout, set-password, delete, api-keys revoke): Redis, when
   * configured, is connected to write the revocation. Every other command (list, show, create, enable, api-keys
   * create) only reads or adds to the user store and never connects to Redis, so a Redis outage cannot stop it.
   */
  readonly revokes: boolean;
}

/**
 * How long after opening the CLI waits for Redis to answer before it writes a revocation. Past it the revocation is
 * reported pending (exit 3), as the admin API answers 202: the store change is already committed by then.
 */
const REDIS_READY_TIMEOUT_MS = 3_000;

/**
 * Opens the store (which must exist and be migrated: StoreNotReadyError otherwise) and, for a revoking command when
 * a Redis deployment is configured (`redis.url`, `redis.cluster` or `redis.sentinel`), Redis: an action then reaches
 * gateways on Redis at once. With the memory store, gateways learn
 * of it from the change log within a second. Audit lines go to stderr as JSON, so stdout holds only the command's
 * output.
 *
 * A Redis that does not answer never stops a command. A revoking action is committed to the user store (with its
 * change-log row) first either way; only its Redis write waits for the connection, and on giving up it is reported
 * pending. That is as safe as refusing and safer than it: the store change is what every gateway's change poller
 * turns into the revocation once Redis answers again (and what refuses logins and refreshes at once), and a refused
 * disable would leave the credentials working until Redis is back and someone repeats it.
 */
export async function openCommandContext(config: Config, dataDir: string, needs: CommandNeeds): Promise<CommandContext> {
  const logger = pino({ level: 'info', base: { service: 'portcullis', component: 'cli' } }, pino.destination({ fd: 2, sync: true }));
  // Never created or migrated here: only start and migrate may (a mistyped data dir would get a new, empty store).
  const store: UserStore = await openUserStore(config.database, dataDir, logger, { create: false });
  let redis: RedisKvStore | undefined;
  try {
    // Connecting starts now, in the background, so it overlaps the store work (and argon2) before the first write.
    // A server, a Cluster or a Sentinel-managed master alike (until 2026-12-06 only `redis.url`: with a Cluster or
    // Sentinel, gateways learnt of a CLI revocation from the change log alone). node-redis is loaded only here: about
    // 80 modules and 0.2 CPU-s, which every other command (and every command on a setup without Redis) would pay for
    // nothing.
    if (needs.revokes) redis = await openRedisKvStore(config.redis);
    const auth = config.middleware.auth;
    const admin = new IdentityAdmin({
      store,
      ...(redis ? { kv: whenAnswering(redis, performance.now() + REDIS_READY_TIMEOUT_MS) } : {}),
      // No argon2.timeout here: a timed-out hash still holds the hashing process's channel, so the command printed
      // "password hashing timed out", waited for the hash all the same, and left the password unchanged.
      passwords: await createPasswordHasher({ ...auth.argon2, timeout: Number.POSITIVE_INFINITY }),
      schemas: createAuthSchemas(auth),
      revocationTtlMs: acceptWindowMs(config.jwt.access_token_expiration),
      actor: 'cli',
      audit: auditSink(logger),
    });
    return {
      admin,
      async close() {
        await Promise.allSettled([store.close(), redis?.close()]);
      },
    };
  } catch (err) {
    await Promise.allSettled([store.close(), redis?.close()]);
    throw err;
  }
}

/**
 * The revocation writes, each after Redis first answers a PING (bounded by `deadline`): Redis connects in the
 * background and fails commands fast until it has, so a write sent at once would fail against a healthy server. A
 * Redis that has not answered by then fails the write with KvUnavailableError, which IdentityAdmin reports as pending.
 */
function whenAnswering(redis: RedisKvStore, deadline: number): Pick<KvStore, 'revokeSubject' | 'revoke'> {
  let ready: Promise<void> | undefined;
  const answering = (): Promise<void> => (ready ??= waitForRedis(redis, deadline));
  return {
    async revokeSubject(subject, revokedAtMs, ttlMs, generation) {
      await answering();
      await redis.revokeSubject(subject, revokedAtMs, ttlMs, generation);
    },
    async revoke(tokenId, expiresAtMs) {
      await answering();
      await redis.revoke(tokenId, expiresAtMs);
    },
  };
}

/**
 * Waits for a PING to answer, until `deadline` (performance.now() time: on the wall clock a step back during the wait,
 * NTP or a restored snapshot, held the command for as long as the step). On giving up, the failure carries the connection's own error code
 * (ECONNREFUSED, ENOTFOUND…) when there was one: the last PING only says it timed out or found the client closed.
 */
async function waitForRedis(kv: RedisKvStore, deadline: number): Promise<void> {
  for (;;) {
    try {
      await kv.ping();
      return;
    } catch (err) {
      if (performance.now() > deadline) throw new KvUnavailableError({ cause: connectionFailure(kv) ?? err });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The connection's last error as a cause holding only its code; `lastError` is "Class(CODE)" (describeCause). */
function connectionFailure(kv: RedisKvStore): Error | undefined {
  const code = /\(([A-Za-z0-9_]+)\)$/.exec(kv.lastError ?? '')?.[1];
  return code === undefined ? undefined : Object.assign(new Error('redis connection failed'), { code });
}
