// The gateway's own auth API: POST /auth/{register,login,refresh,logout} and GET /.well-known/jwks.json.
import { GatewayError, toGatewayError } from '../errors.js';
import { KvUnavailableError } from '../kv/kv-store.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Outcome, Phase } from '../pipeline/phase.js';
import { sendError, sendJson } from '../pipeline/reply.js';
import { JWKS_PATH } from './paths.js';
import { StoreUnavailableError } from '../store/user-store.js';
import { TRACE } from '../observability/tracing/types.js';
import { parseBearer } from './bearer.js';
import { AUTH_BODY_LIMIT, parseWith, readJsonBody } from './body.js';
import type { SigningKeys } from './keys.js';
import { HASHER_BUSY_RETRY_AFTER_SECONDS, HasherBusyError } from './password.js';
import type { AuthService, RequestFacts, Session, TokenPair } from './service.js';
import type { AuthSchemas } from './validation.js';

/** The ids and client of `ctx`, as its access line has them, for the service's own lines about the request. */
function requestFacts(ctx: RequestContext): RequestFacts {
  return { request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, client: ctx.clientAddress };
}

/** Seconds a client is asked to wait when the user store or KV store is down. */
export const RETRY_AFTER_SECONDS = 5;

export { HASHER_BUSY_RETRY_AFTER_SECONDS };

/** Hook the rate limiter provides: a per-email bucket on login. 'responded' means it already answered (429). */
export type ThrottleLogin = (ctx: RequestContext, email: string) => Promise<Outcome>;

/** What the auth routes need. */
export interface AuthRoutesDeps {
  readonly service: AuthService;
  /** From createAuthSchemas(config.middleware.auth). */
  readonly schemas: AuthSchemas;
  /** Its `jwks` is served at /.well-known/jwks.json; undefined (HS256) answers 404 there. */
  readonly keys: Pick<SigningKeys, 'jwks'>;
  /** Called after the login body is parsed and before the password is checked. */
  readonly throttleLogin?: ThrottleLogin;
  /** Gives back what throttleLogin took for a login refused before its password check (rate limiter's refundLogin). */
  readonly refundLogin?: (ctx: RequestContext) => Promise<void>;
  /** Body limit in bytes (default 64 KiB). */
  readonly bodyLimit?: number;
  /**
   * The longest silence between two body chunks, ms (`server.timeouts.request_body_chunk`, read per request so a
   * reload applies); default none (timeouts.request alone).
   */
  readonly bodyChunkMs?: () => number;
}

type Handler = (ctx: RequestContext) => Promise<Outcome>;

/**
 * The Phase answering route class 'auth'. Its onRequest always answers (returns 'responded'): a known route, 404
 * for an unknown /auth/* path, 405 with Allow for a wrong method. Failures are sent as GatewayError bodies; a store
 * outage is 503 with Retry-After, and nothing from a driver reaches the client.
 */
export function createAuthRoutes(deps: AuthRoutesDeps): Phase {
  const { service, schemas } = deps;
  const limit = deps.bodyLimit ?? AUTH_BODY_LIMIT;
  const chunkMs = deps.bodyChunkMs;
  const readBody = (ctx: RequestContext): Promise<unknown> =>
    readJsonBody(ctx.req, { limit, chunkMs: chunkMs === undefined ? 0 : chunkMs() }, ctx.res);

  const session = (s: Session): Record<string, unknown> => ({
    user_id: s.userId,
    email: s.email,
    access_token: s.accessToken,
    refresh_token: s.refreshToken,
    token_type: s.tokenType,
    expires_in: s.expiresIn,
  });
  const pair = (p: TokenPair): Record<string, unknown> => ({
    access_token: p.accessToken,
    refresh_token: p.refreshToken,
    token_type: p.tokenType,
    expires_in: p.expiresIn,
  });

  const routes = new Map<string, Handler>([
    [
      '/auth/register',
      async (ctx) => {
        const body = parseWith(schemas.register, await readBody(ctx));
        return sendJson(ctx, 201, session(await service.register(body)));
      },
    ],
    [
      '/auth/login',
      async (ctx) => {
        const body = parseWith(schemas.login, await readBody(ctx));
        if (deps.throttleLogin && (await deps.throttleLogin(ctx, body.email)) === 'responded') return 'responded';
        let started: Session;
        try {
          started = await service.login(body);
        } catch (err) {
          // Refused before its password was checked (the hasher's queue full): the throttle's tokens go back, so a
          // flood that keeps the hasher busy does not use up the limits of the users it shuts out meanwhile.
          if (err instanceof HasherBusyError) await deps.refundLogin?.(ctx);
          throw err;
        }
        return sendJson(ctx, 200, session(started));
      },
    ],
    [
      '/auth/refresh',
      async (ctx) => {
        const body = parseWith(schemas.refresh, await readBody(ctx));
        return sendJson(ctx, 200, pair(await service.refresh(body.refresh_token, requestFacts(ctx))));
      },
    ],
    [
      '/auth/logout',
      async (ctx) => {
        const body = parseWith(schemas.logout, await readBody(ctx));
        const bearer = parseBearer(ctx.req.headers.authorization);
        await service.logout({
          refreshToken: body.refresh_token,
          allSessions: body.all_sessions,
          // A malformed credential is passed on as-is so that all_sessions fails with invalid_token.
          accessToken: bearer.kind === 'token' ? bearer.token : bearer.kind === 'malformed' ? '' : undefined,
        }, requestFacts(ctx));
        return sendJson(ctx, 200, { message: 'Logged out' });
      },
    ],
  ]);

  return {
    name: 'auth-routes',
    async onRequest(ctx: RequestContext): Promise<Outcome> {
      const method = ctx.req.method ?? 'GET';
      if (ctx.path === JWKS_PATH) {
        if (!deps.keys.jwks) return sendError(ctx, new GatewayError('NOT_FOUND'));
        if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(ctx, 'GET, HEAD');
        return sendJson(ctx, 200, deps.keys.jwks, { 'cache-control': 'public, max-age=300' });
      }
      const handler = routes.get(ctx.path);
      if (!handler) return sendError(ctx, new GatewayError('NOT_FOUND'));
      if (method !== 'POST') return methodNotAllowed(ctx, 'POST');
      try {
        return await handler(ctx);
      } catch (err) {
        return sendError(ctx, toAuthError(err));
      }
    },
  };
}

/** Maps anything an auth handler throws to the error a client sees. */
export function toAuthError(err: unknown): GatewayError {
  if (err instanceof StoreUnavailableError) {
    return new GatewayError('STORE_UNAVAILABLE', { cause: err, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } });
  }
  if (err instanceof KvUnavailableError) {
    return new GatewayError('KV_UNAVAILABLE', { cause: err, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } });
  }
  if (err instanceof HasherBusyError) {
    return new GatewayError('PASSWORD_HASHER_BUSY', { headers: { 'retry-after': String(HASHER_BUSY_RETRY_AFTER_SECONDS) } });
  }
  return toGatewayError(err);
}

function methodNotAllowed(ctx: RequestContext, allow: string): Outcome {
  return sendError(ctx, new GatewayError('METHOD_NOT_ALLOWED', { headers: { allow } }));
}
