// Users (and API keys) a CLI suite starts from, created in this process rather than by one `portcullis users create` each: the same
// IdentityAdmin.createUser the command calls, on the same config file and store, without a process (and a hashing
// process) per user. For suites whose subject is another command (`users list`); `users create` itself is tested as
// a process elsewhere (identity-cli, review-identity-cli-not-found).
import { loadConfigFile } from '../../src/config/load.js';
import { openUserStore } from '../../src/store/open.js';
import { createPasswordHasher } from '../../src/auth/password.js';
import { createAuthSchemas } from '../../src/auth/validation.js';
import { acceptWindowMs } from '../../src/auth/tokens.js';
import { IdentityAdmin } from '../../src/identity/admin-service.js';

/**
 * Creates `emails` one after another (in that order of creation time) with `password`, in the store `configFile` and
 * `dataDir` name, which must be migrated already; resolves to their ids in the same order.
 */
export async function seedUsers(configFile: string, dataDir: string, emails: readonly string[], password: string): Promise<string[]> {
  return withAdmin(configFile, dataDir, async (admin) => {
    const ids: string[] = [];
    for (const email of emails) ids.push((await admin.createUser({ email, password })).id);
    return ids;
  });
}

/** Creates an API key named `name` as `api-keys create NAME` does; resolves to its id. */
export function seedApiKey(configFile: string, dataDir: string, name: string): Promise<string> {
  return withAdmin(configFile, dataDir, async (admin) => (await admin.createApiKey({ name })).id);
}

/** The CLI's IdentityAdmin on the store `configFile` and `dataDir` name (no Redis, no audit lines), closed after `use`. */
async function withAdmin<T>(configFile: string, dataDir: string, use: (admin: IdentityAdmin) => Promise<T>): Promise<T> {
  const config = loadConfigFile(configFile);
  const store = await openUserStore(config.database, dataDir, { warn: () => undefined }, { create: false });
  try {
    const auth = config.middleware.auth;
    const admin = new IdentityAdmin({
      store,
      passwords: await createPasswordHasher(auth.argon2),
      schemas: createAuthSchemas(auth),
      revocationTtlMs: acceptWindowMs(config.jwt.access_token_expiration),
      actor: 'cli',
      audit: () => undefined,
    });
    return await use(admin);
  } finally {
    await store.close();
  }
}
