// Builds the auth feature from config in one call (keys, tokens, passwords, service, both phases) for the composition root.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { KvStore } from '../kv/kv-store.js';
import type { Phase } from '../pipeline/phase.js';
import type { RequestContext } from '../pipeline/context.js';
import type { UserStore } from '../store/user-store.js';
import type { AuthEventSink } from './events.js';
import { join } from 'node:path';
import type { ConfigError } from '../config/config-error.js';
import { keysChangedError, keysFingerprint, loadSigningKeys, readGeneratedSecret, SECRET_FILE_NAME, type SigningKeys } from './keys.js';
import { WORKER_KEYS_ENV } from './worker-keys-env.js';
import { createPasswordHasher, type PasswordHasher } from './password.js';
import { createAuthenticatePhase, type AuthFailurePenalty, type AuthMode } from './phase.js';
import type { AcceptedMethods } from './credentials.js';
import { createAuthRoutes, type ThrottleLogin } from './routes.js';
import { AuthService } from './service.js';
import { TokenService } from './tokens.js';
import { createAuthSchemas, type AuthSchemas } from './validation.js';
import { ApiKeyVerifier } from '../identity/api-key-verifier.js';
import { LastUsedRecorder } from '../identity/last-used.js';

/** jwt.refresh_token_absolute_expiration when unset: 30 days (Auth0's default absolute lifetime). */
const DEFAULT_SESSION_MAX_MS = 30 * 86_400_000;

/** Everything setupAuth needs. */
export interface AuthSetupDeps {
  readonly config: Pick<Config, 'jwt'> & { readonly middleware: Pick<Config['middleware'], 'auth'> };
  /** resolveDataDir(): where a generated JWT secret is kept. */
  readonly dataDir: string;
  readonly store: UserStore;
  readonly kv: KvStore;
  readonly logger: Logger;
  readonly events?: AuthEventSink;
  readonly throttleLogin?: ThrottleLogin;
  /** Gives back what throttleLogin took for a login refused before its password check. */
  readonly refundLogin?: (ctx: RequestContext) => Promise<void>;
  /** `server.timeouts.request_body_chunk` of the running config, ms: the silence bound of an /auth/* body. */
  readonly requestBodyChunkMs?: () => number;
  /** Wraps the token service and password hasher before use (tracing's child spans); default: as they are. */
  readonly instrument?: AuthInstrument;
}

/** Decorators for the parts whose calls are worth observing; each returns its argument or a wrapper of it. */
export interface AuthInstrument {
  tokens(tokens: TokenService): TokenService;
  passwords(passwords: PasswordHasher): PasswordHasher;
}

/** The built feature. */
export interface AuthFeature {
  readonly keys: SigningKeys;
  readonly tokens: TokenService;
  readonly service: AuthService;
  /** Answers /auth/* and the JWKS (the gateway's own "auth" route). */
  readonly routes: Phase;
  /**
   * The authenticate phase of a proxied route with this mode (every mode strips client-sent identity and consumer
   * headers). `methods`: the route's accepted credentials (default `middleware.auth.auth_methods`); a route's own
   * `auth_methods` is one `acceptedMethods(route.auth_methods)` away.
   */
  authenticateFor(
    mode: AuthMode,
    penalize?: AuthFailurePenalty,
    config?: AuthSetupDeps['config']['middleware']['auth'],
    methods?: AcceptedMethods,
  ): Phase;
  readonly passwords: PasswordHasher;
  readonly schemas: AuthSchemas;
  /** API-key checks (cache keyed by the key's hash) and their batched last-used writes; close `lastUsed` on stop. */
  readonly apiKeys: ApiKeyVerifier;
  readonly lastUsed: LastUsedRecorder;
  /** keysFingerprint of the keys loaded at start. */
  readonly keysFingerprint: string;
  /**
   * For a reload: the same ConfigError a changed key would give (keysChangedError) when the key files now hold other
   * keys than those loaded at start, else undefined. Files that cannot be read now are not judged: the keys in memory
   * still serve.
   */
  keysChangedOnDisk(): Promise<ConfigError | undefined>;
}

/**
 * Runs once at start-up: loads keys (ConfigError naming the key on a bad secret or PEM), builds the password hasher
 * with its dummy hash for unknown emails (made without hashing, so the hashing process is not started here), and
 * wires the service and the phases. Does not migrate the store or start the janitor.
 */
export async function setupAuth(deps: AuthSetupDeps): Promise<AuthFeature> {
  const { jwt } = deps.config;
  const auth = deps.config.middleware.auth;
  const keys = await loadSigningKeys({ jwt, dataDir: deps.dataDir, logger: deps.logger });
  const fingerprint = keysFingerprint(keys);
  // A cluster's replacement worker: the keys its siblings started with (WORKER_KEYS_ENV), or it does not serve.
  const siblings = process.env[WORKER_KEYS_ENV];
  if (siblings !== undefined && siblings !== '' && siblings !== fingerprint) throw keysChangedError();
  const keysChangedOnDisk = async (): Promise<ConfigError | undefined> => {
    let now: SigningKeys;
    try {
      // The generated secret is read, never made again here: a reload writes nothing into the data dir.
      const generated = jwt.algorithm === 'HS256' && jwt.secret === '' ? readGeneratedSecret(join(deps.dataDir, SECRET_FILE_NAME)) : '';
      if (generated === undefined) return undefined;
      const secret = generated === '' ? jwt.secret : generated;
      now = await loadSigningKeys({ jwt: { ...jwt, secret }, dataDir: deps.dataDir, logger: { warn: () => undefined }, env: {} });
    } catch {
      return undefined;
    }
    return keysFingerprint(now) === fingerprint ? undefined : keysChangedError();
  };
  let tokens = new TokenService({
    keys,
    issuer: jwt.issuer,
    audience: jwt.audience,
    accessTokenTtlMs: jwt.access_token_expiration,
  });
  let passwords = await createPasswordHasher(auth.argon2);
  if (deps.instrument) {
    tokens = deps.instrument.tokens(tokens);
    passwords = deps.instrument.passwords(passwords);
  }
  const service = new AuthService({
    store: deps.store,
    kv: deps.kv,
    passwords,
    tokens,
    refreshTokenTtlMs: jwt.refresh_token_expiration,
    sessionMaxMs: jwt.refresh_token_absolute_expiration ?? Math.max(DEFAULT_SESSION_MAX_MS, jwt.refresh_token_expiration),
    refreshReuseGraceMs: jwt.refresh_reuse_grace,
    logger: deps.logger,
    ...(deps.events ? { events: deps.events } : {}),
  });
  const schemas = createAuthSchemas(auth);
  const lastUsed = new LastUsedRecorder({ store: deps.store, logger: deps.logger });
  const apiKeys = new ApiKeyVerifier({
    store: deps.store,
    kv: deps.kv,
    ttlMs: auth.api_key_cache_ttl,
    lastUsed,
    allowOnKvError: auth.on_store_error === 'allow',
  });
  const routes = createAuthRoutes({
    service,
    schemas,
    keys,
    ...(deps.throttleLogin ? { throttleLogin: deps.throttleLogin } : {}),
    ...(deps.refundLogin ? { refundLogin: deps.refundLogin } : {}),
    ...(deps.requestBodyChunkMs ? { bodyChunkMs: deps.requestBodyChunkMs } : {}),
  });
  // `config` is the running config's middleware.auth (a reload may change public_paths).
  const authenticateFor = (mode: AuthMode, penalize?: AuthFailurePenalty, config = auth, methods?: AcceptedMethods): Phase =>
    createAuthenticatePhase({
      config,
      tokens,
      kv: deps.kv,
      apiKeys,
      logger: deps.logger,
      mode,
      ...(penalize ? { penalize } : {}),
      ...(methods ? { methods } : {}),
    });
  return { keys, tokens, service, routes, authenticateFor, passwords, schemas, apiKeys, lastUsed, keysFingerprint: fingerprint, keysChangedOnDisk };
}
