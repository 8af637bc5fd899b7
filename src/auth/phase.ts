// The authenticate Phase for proxied routes: bearer → verify → revoked? → ctx.user, and identity headers upstream.
import type { Logger } from 'pino';
import { describeCause, GatewayError } from '../errors.js';
import { KvUnavailableError, type KvStore } from '../kv/kv-store.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Outcome, Phase, UpstreamHeaders } from '../pipeline/phase.js';
import { sendError } from '../pipeline/reply.js';
import type { Config } from '../config/schema.js';
import { parseBearer } from './bearer.js';
import { INVALID_TOKEN_CHALLENGE } from './service.js';
import { TokenError, type AccessTokenClaims, type TokenService } from './tokens.js';

/** The config keys the phase reads (`middleware.auth`). */
export type AuthPhaseConfig = Pick<
  Config['middleware']['auth'],
  'enabled' | 'public_paths' | 'user_id_header' | 'user_email_header' | 'on_store_error'
>;

/** What the authenticate phase needs. */
export interface AuthenticatePhaseDeps {
  readonly config: AuthPhaseConfig;
  /** Required when `config.enabled`. */
  readonly tokens?: TokenService;
  /** Only `isRevoked` is used. Required when `config.enabled`. */
  readonly kv?: Pick<KvStore, 'isRevoked'>;
  readonly logger: Pick<Logger, 'warn'>;
}

/** A compiled public-path rule list: exact paths, or prefixes for entries ending in `*`. */
export function publicPathMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.endsWith('*')));
  const prefixes = paths.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (path) => exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix));
}

/**
 * The Phase for route class 'proxy'. `onUpstreamRequest` is always present: it removes the client's own identity
 * headers on every request (auth on or off) and sets them from `ctx.user`. `onRequest` exists only when auth is
 * enabled: outside the public paths it requires a valid, unrevoked access token, or answers 401 with a
 * `WWW-Authenticate: Bearer` challenge (`error="invalid_token"` when a token was sent). When the revocation list
 * cannot be read, `on_store_error` decides: deny → 503 KV_UNAVAILABLE, allow → the token is accepted.
 */
export function createAuthenticatePhase(deps: AuthenticatePhaseDeps): Phase {
  const idHeader = deps.config.user_id_header.toLowerCase();
  const emailHeader = deps.config.user_email_header.toLowerCase();

  const onUpstreamRequest = (ctx: RequestContext, headers: UpstreamHeaders): void => {
    delete headers[idHeader];
    delete headers[emailHeader];
    if (ctx.user) {
      headers[idHeader] = ctx.user.id;
      headers[emailHeader] = ctx.user.email;
    }
  };

  if (!deps.config.enabled) return { name: 'authenticate', onUpstreamRequest };

  const { tokens, kv } = deps;
  if (!tokens || !kv) throw new TypeError('createAuthenticatePhase: tokens and kv are required when auth is enabled');
  const isPublic = publicPathMatcher(deps.config.public_paths);
  const allowOnKvError = deps.config.on_store_error === 'allow';

  /** True from the first revocation-list failure until it answers again (outages are logged once). */
  let outage = false;

  /** Revoked? → 401; store down → on_store_error; else the caller becomes ctx.user. */
  const admit = (ctx: RequestContext, claims: AccessTokenClaims, revoked: boolean): Outcome => {
    if (revoked) return unauthorized(ctx, INVALID_TOKEN_CHALLENGE);
    ctx.user = { id: claims.userId, email: claims.email, tokenId: claims.tokenId, tokenExpiresAt: claims.expiresAt };
    return 'continue';
  };

  const onKvError = (ctx: RequestContext, claims: AccessTokenClaims, err: unknown): Outcome => {
    if (!(err instanceof KvUnavailableError)) throw err;
    if (!allowOnKvError) {
      return sendError(ctx, new GatewayError('KV_UNAVAILABLE', { cause: err, headers: { 'retry-after': '5' } }));
    }
    // Once per outage, not per request: the limiter logs the outage too, and a flood of lines helps nobody.
    if (!outage) {
      outage = true;
      deps.logger.warn({ request_id: ctx.id, cause: describeCause(err), policy: 'allow' }, 'Revocation List Unavailable');
    }
    return admit(ctx, claims, false);
  };

  /** Verifies the signature when `known` is undefined; awaits `pending` (an isRevoked already asked) when given. */
  const slowPath = async (
    ctx: RequestContext,
    token: string,
    known: AccessTokenClaims | undefined,
    pending?: Promise<boolean>,
  ): Promise<Outcome> => {
    let claims = known;
    if (claims === undefined) {
      try {
        claims = await tokens.verify(token);
      } catch (err) {
        if (err instanceof TokenError) return unauthorized(ctx, INVALID_TOKEN_CHALLENGE);
        throw err;
      }
    }
    try {
      const revoked = await (pending ?? kv.isRevoked(claims.tokenId));
      outage = false;
      return admit(ctx, claims, revoked);
    } catch (err) {
      return onKvError(ctx, claims, err);
    }
  };

  /**
   * Synchronous when it can be (the common case): a token already verified (TokenService's cache) and a memory
   * revocation list answer without a promise; otherwise the async path verifies the signature or awaits Redis.
   */
  const onRequest = (ctx: RequestContext): Outcome | Promise<Outcome> => {
    if (ctx.routeClass !== 'proxy' || isPublic(ctx.path)) return 'continue';
    const credential = parseBearer(ctx.req.headers.authorization);
    if (credential.kind === 'none') return unauthorized(ctx, 'Bearer');
    if (credential.kind === 'malformed') return unauthorized(ctx, INVALID_TOKEN_CHALLENGE);
    const claims = tokens.verifiedClaims(credential.token);
    if (claims === undefined) return slowPath(ctx, credential.token, undefined);
    let revoked: boolean | Promise<boolean>;
    try {
      revoked = kv.isRevoked(claims.tokenId);
    } catch (err) {
      return onKvError(ctx, claims, err);
    }
    return typeof revoked === 'boolean' ? admit(ctx, claims, revoked) : slowPath(ctx, credential.token, claims, revoked);
  };

  return { name: 'authenticate', onRequest, onUpstreamRequest };
}

/** One shared error per challenge: a flood of bad tokens allocates no Error (and captures no stack) per request. */
const UNAUTHORIZED_BY_CHALLENGE = new Map<string, GatewayError>();

function unauthorized(ctx: RequestContext, challenge: string): Outcome {
  let error = UNAUTHORIZED_BY_CHALLENGE.get(challenge);
  if (error === undefined) {
    error = new GatewayError('UNAUTHORIZED', { headers: { 'www-authenticate': challenge } });
    UNAUTHORIZED_BY_CHALLENGE.set(challenge, error);
  }
  return sendError(ctx, error);
}
