// The authenticate Phase for proxied routes: bearer/API key → verify → revoked? → the caller (user or API-key
// consumer), and the identity headers upstream.
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { KvUnavailableError, type KvStore } from '../kv/kv-store.js';
import { sharedOutageLog, type KvOutageLog } from '../kv/outage.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Outcome, Phase, UpstreamHeaders } from '../pipeline/phase.js';
import { sendError } from '../pipeline/reply.js';
import type { Config } from '../config/schema.js';
import { StoreUnavailableError } from '../store/user-store.js';
import type { ApiKeyCheck, ApiKeyVerifier } from '../identity/api-key-verifier.js';
import { acceptedMethods, readCredential, type AcceptedMethods } from './credentials.js';
import { API_KEY_INSIDE } from '../identity/api-key-format.js';
import { headerKey } from '../proxy/owned-headers.js';
import { INVALID_TOKEN_CHALLENGE, TokenError } from './token-error.js';
import type { AccessTokenClaims, TokenService } from './tokens.js';
import { CALLER, CONSUMER } from './caller.js';

/** What a route asks of its callers: a valid token, a token if one is sent, or nothing. */
export type AuthMode = 'required' | 'optional' | 'off';

/**
 * Called when a request fails authentication, before the 401 goes out: counts the failure against the client's
 * address bucket. 'responded' means it answered instead (429: a flood of bad tokens meets the limit).
 */
export interface AuthFailurePenalty {
  (ctx: RequestContext): Outcome | Promise<Outcome>;
  /**
   * Before the store read of an API key with no cached answer: 'responded' (429) when the client address's key-read
   * bucket is empty, so a client that has sprayed made-up keys stops reaching the store; otherwise 'continue', having
   * spent nothing. The bucket is one of its own (never the address's traffic bucket, which anonymous clients behind
   * the same NAT spend) and only unknown keys spend it (endKeyRead): valid keys' reads, however many at once, never
   * hold a token of it. A bucket-store failure lets the read go on.
   */
  readonly checkKeyRead?: (ctx: RequestContext) => Outcome | Promise<Outcome>;
  /**
   * The read checkKeyRead let go on is over, whatever its end: `unknown` for a key the store did not find valid
   * (unknown, revoked, expired), which spends one token of the key-read bucket. Reads let go on count as spent
   * tokens until this, so keys sent at once cannot all pass the same look.
   */
  readonly endKeyRead?: (ctx: RequestContext, unknown: boolean) => Promise<void>;
}

/** The config keys the phase reads (`middleware.auth`). */
export type AuthPhaseConfig = Pick<
  Config['middleware']['auth'],
  | 'enabled'
  | 'public_paths'
  | 'user_id_header'
  | 'user_email_header'
  | 'on_store_error'
  | 'auth_methods'
  | 'consumer_id_header'
  | 'consumer_name_header'
>;

/** The revocation-store subject of a user: revoking it refuses every access token issued before (issue 12). */
export function userSubject(userId: string): string {
  return `user:${userId}`;
}

/** What the authenticate phase needs. */
export interface AuthenticatePhaseDeps {
  readonly config: AuthPhaseConfig;
  /** Required when `config.enabled`. */
  readonly tokens?: TokenService;
  /** Only `isRevoked` is used. Required when `config.enabled`. */
  readonly kv?: Pick<KvStore, 'isRevoked'>;
  /** API-key checks; without it an API key is refused like a bad token. */
  readonly apiKeys?: Pick<ApiKeyVerifier, 'check' | 'noteUse' | 'needsStore'>;
  /** The route's accepted credentials (default: `config.auth_methods`, i.e. `middleware.auth.auth_methods`). */
  readonly methods?: AcceptedMethods;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
  /**
   * Where revocation-list outages are logged. Default: the log shared by everything built on `kv`
   * (sharedOutageLog), the limiters included, so one Redis outage is one set of lines whichever phase meets it.
   */
  readonly outage?: KvOutageLog;
  /** The route's mode (default required). */
  readonly mode?: AuthMode;
  /** Counts each failure against the client address's bucket (the route's limiter). */
  readonly penalize?: AuthFailurePenalty;
}

/** A compiled public-path rule list: exact paths, or prefixes for entries ending in `*`. */
export function publicPathMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.endsWith('*')));
  const prefixes = paths.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (path) => exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix));
}

/**
 * The Phase for route class 'proxy'. `onUpstreamRequest` is always present: it removes the client's own identity
 * and consumer headers on every request (auth on or off) and sets them from CALLER and CONSUMER (for a consumer it
 * also removes the API key it sent, see removeApiKey; any other key of ours is removed too, removeUnusedApiKeys). `onRequest` exists only when auth is
 * enabled: outside the public paths it requires a valid, unrevoked access token, or answers 401 with a
 * `WWW-Authenticate: Bearer` challenge (`error="invalid_token"` when a token was sent). When the revocation list
 * cannot be read, `on_store_error` decides: deny → 503 KV_UNAVAILABLE, allow → the token is accepted.
 */
export function createAuthenticatePhase(deps: AuthenticatePhaseDeps): Phase {
  const idHeader = deps.config.user_id_header.toLowerCase();
  const emailHeader = deps.config.user_email_header.toLowerCase();

  const consumerIdHeader = deps.config.consumer_id_header.toLowerCase();
  const consumerNameHeader = deps.config.consumer_name_header.toLowerCase();

  const onUpstreamRequest = (ctx: RequestContext, headers: UpstreamHeaders): void => {
    delete headers[idHeader];
    delete headers[emailHeader];
    delete headers[consumerIdHeader];
    delete headers[consumerNameHeader];
    const user = CALLER.get(ctx);
    if (user) {
      headers[idHeader] = user.id;
      headers[emailHeader] = user.email;
    }
    // Both are set when an API key and a JWT beside it passed (readCredential's `token`).
    const consumer = CONSUMER.get(ctx);
    if (consumer) {
      removeApiKey(headers);
      headers[consumerIdHeader] = consumer.id;
      headers[consumerNameHeader] = consumer.name;
    } else {
      removeUnusedApiKeys(headers, user === undefined);
    }
  };
  const mode = deps.mode ?? 'required';
  if (!deps.config.enabled || mode === 'off') return { name: 'authenticate', onUpstreamRequest };
  const optional = mode === 'optional';
  const penalize = deps.penalize;

  const { tokens, kv } = deps;
  if (!tokens || !kv) throw new TypeError('createAuthenticatePhase: tokens and kv are required when auth is enabled');
  const isPublic = publicPathMatcher(deps.config.public_paths);
  const allowOnKvError = deps.config.on_store_error === 'allow';
  const policy = allowOnKvError ? 'allow' : 'deny';
  /**
   * Store outages, logged at their transitions under either policy: with deny (the default) a 503 used to leave no
   * line at all, and with the limiter off nothing else would write one.
   */
  const outage = deps.outage ?? sharedOutageLog(kv, deps.logger);

  /** A valid, unrevoked token: its user becomes the request's caller. */
  const admit = (ctx: RequestContext, claims: AccessTokenClaims): Outcome => {
    CALLER.set(ctx, { id: claims.userId, email: claims.email, tokenId: claims.tokenId, tokenExpiresAt: claims.expiresAt });
    return 'continue';
  };

  const onKvError = (ctx: RequestContext, claims: AccessTokenClaims, err: unknown): Outcome => {
    if (!(err instanceof KvUnavailableError)) throw err;
    outage.failure(err, 'revocation', policy);
    if (!allowOnKvError) {
      return sendError(ctx, new GatewayError('KV_UNAVAILABLE', { cause: err, headers: { 'retry-after': '5' } }));
    }
    return admit(ctx, claims);
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
        if (err instanceof TokenError) return refuse(ctx, INVALID_TOKEN_CHALLENGE);
        throw err;
      }
    }
    try {
      const revoked = await (pending ?? kv.isRevoked(claims.tokenId, userSubject(claims.userId), claims.issuedAt, claims.generation));
      if (outage.active) outage.answered();
      if (revoked) return refuse(ctx, INVALID_TOKEN_CHALLENGE);
      return admit(ctx, claims);
    } catch (err) {
      return onKvError(ctx, claims, err);
    }
  };

  /**
   * The API-key caller becomes CONSUMER; a store that cannot answer gives 503 with Retry-After. A key let through
   * under `allow` although its revocations could not be read is reported to the outage log as a token's check is
   * (onKvError); any other valid key had its revocations read, which is an answer of the store.
   */
  const admitKey = (ctx: RequestContext, check: ApiKeyCheck): Outcome | Promise<Outcome> => {
    if (check.kind !== 'ok') return refuse(ctx, INVALID_TOKEN_CHALLENGE);
    if (check.revocationError !== undefined) outage.failure(check.revocationError, 'revocation', policy);
    else if (outage.active) outage.answered();
    CONSUMER.set(ctx, check.consumer);
    return 'continue';
  };
  const onKeyError = (ctx: RequestContext, err: unknown): Outcome => {
    if (err instanceof StoreUnavailableError) {
      return sendError(ctx, new GatewayError('STORE_UNAVAILABLE', { cause: err, headers: { 'retry-after': '5' } }));
    }
    if (err instanceof KvUnavailableError) {
      // The key verifier throws a revocation-store failure only under `deny`: with `allow` it admits the key and
      // hands the error over with the answer (admitKey).
      outage.failure(err, 'revocation', 'deny');
      return sendError(ctx, new GatewayError('KV_UNAVAILABLE', { cause: err, headers: { 'retry-after': '5' } }));
    }
    throw err;
  };
  const checkApiKey = (ctx: RequestContext, key: string): Outcome | Promise<Outcome> => {
    if (deps.apiKeys === undefined) return refuse(ctx, INVALID_TOKEN_CHALLENGE);
    if (penalize?.checkKeyRead !== undefined && deps.apiKeys.needsStore(key)) return checkUncachedKey(ctx, key, deps.apiKeys, penalize);
    let check: ApiKeyCheck | Promise<ApiKeyCheck>;
    try {
      check = deps.apiKeys.check(key);
    } catch (err) {
      return onKeyError(ctx, err);
    }
    if (!(check instanceof Promise)) return admitKey(ctx, check);
    return check.then(
      (c) => admitKey(ctx, c),
      (err: unknown) => onKeyError(ctx, err),
    );
  };

  /**
   * A key with no cached answer costs a store read, so the address's key-read bucket is looked at first: a client that
   * sprays made-up keys and has emptied it gets the 429 without the store being asked (it was asked once per key, and
   * only then penalized). Only a key the store does not find valid spends that bucket, and takes the failed-auth
   * penalty on the address bucket as any failure; a valid key touches neither, so valid keys behind one address, all
   * uncached at once, are limited by their own buckets alone.
   */
  const checkUncachedKey = async (
    ctx: RequestContext,
    key: string,
    apiKeys: Pick<ApiKeyVerifier, 'check'>,
    penalty: AuthFailurePenalty,
  ): Promise<Outcome> => {
    if ((await penalty.checkKeyRead?.(ctx)) === 'responded') return 'responded';
    let check: ApiKeyCheck;
    try {
      check = await apiKeys.check(key);
    } catch (err) {
      await penalty.endKeyRead?.(ctx, false);
      return onKeyError(ctx, err); // not a failure of the client's: the store could not judge the key
    }
    await penalty.endKeyRead?.(ctx, check.kind !== 'ok');
    if (check.kind === 'ok') return admitKey(ctx, check);
    return refuse(ctx, INVALID_TOKEN_CHALLENGE);
  };

  // The route's accepted credentials, resolved once (default: middleware.auth.auth_methods).
  const methods = deps.methods ?? acceptedMethods(deps.config.auth_methods);

  /**
   * Synchronous when it can be (the common case): a token already verified (TokenService's cache), a cached API
   * key, and a memory revocation list answer without a promise; otherwise the async path verifies the signature,
   * reads the key from the store, or awaits Redis.
   */
  const onRequest = (ctx: RequestContext): Outcome | Promise<Outcome> => {
    if (isPublic(ctx.path)) return 'continue';
    const credential = readCredential(ctx.req.headers, methods);
    if (credential.kind === 'none') return optional ? 'continue' : refuse(ctx, 'Bearer');
    if (credential.kind === 'malformed') return refuse(ctx, INVALID_TOKEN_CHALLENGE);
    if (credential.kind === 'jwt') return checkToken(ctx, credential.token);
    const keyOutcome = checkApiKey(ctx, credential.key);
    const token = credential.token;
    if (token === undefined) return noteKeyUse(ctx, keyOutcome);
    // A JWT beside the key must pass too, once the key has.
    if (typeof keyOutcome === 'string') return keyOutcome === 'continue' ? noteKeyUse(ctx, checkBeside(ctx, token)) : keyOutcome;
    return keyOutcome.then((outcome) => (outcome === 'continue' ? noteKeyUse(ctx, checkBeside(ctx, token)) : outcome));
  };

  /** The key's `last_used_at` moves only for a request it got admitted: not when a token beside it failed. */
  const noteKeyUse = (ctx: RequestContext, outcome: Outcome | Promise<Outcome>): Outcome | Promise<Outcome> => {
    if (typeof outcome !== 'string') return outcome.then((settled) => noteKeyUse(ctx, settled));
    const consumer = outcome === 'continue' ? CONSUMER.get(ctx) : undefined;
    if (consumer !== undefined) deps.apiKeys?.noteUse(consumer);
    return outcome;
  };

  /**
   * The token beside an admitted key. The consumer is held back until the token passes: a refusal's response is
   * written (and plugins' response hooks run) while it is made, and none of them may see the key as the caller.
   */
  const checkBeside = (ctx: RequestContext, token: string): Outcome | Promise<Outcome> => {
    const consumer = CONSUMER.get(ctx);
    CONSUMER.set(ctx, undefined);
    const outcome = checkToken(ctx, token);
    if (typeof outcome === 'string') {
      if (outcome === 'continue') CONSUMER.set(ctx, consumer);
      return outcome;
    }
    return outcome.then((settled) => {
      if (settled === 'continue') CONSUMER.set(ctx, consumer);
      return settled;
    });
  };

  const checkToken = (ctx: RequestContext, token: string): Outcome | Promise<Outcome> => {
    const claims = tokens.verifiedClaims(token);
    if (claims === undefined) return slowPath(ctx, token, undefined);
    let revoked: boolean | Promise<boolean>;
    try {
      revoked = kv.isRevoked(claims.tokenId, userSubject(claims.userId), claims.issuedAt, claims.generation);
    } catch (err) {
      return onKvError(ctx, claims, err);
    }
    if (revoked === true) return refuse(ctx, INVALID_TOKEN_CHALLENGE);
    return revoked === false ? admit(ctx, claims) : slowPath(ctx, token, claims, revoked);
  };

  /** A failed authentication: counted against the client's address bucket (maybe 429), else 401. */
  const refuse = (ctx: RequestContext, challenge: string): Outcome | Promise<Outcome> => {
    if (penalize === undefined) return unauthorized(ctx, challenge);
    const penalty = penalize(ctx);
    if (typeof penalty === 'string') return penalty === 'responded' ? penalty : unauthorized(ctx, challenge);
    return penalty.then((outcome) => (outcome === 'responded' ? outcome : unauthorized(ctx, challenge)));
  };

  return { name: 'authenticate', onRequest, onUpstreamRequest };
}

/**
 * Removes the API key a consumer authenticated with: `X-API-Key`, or an `Authorization` whose bearer value is a key
 * (a JWT stays: backends may verify it themselves from the JWKS). A backend cannot check a key (only its hash is
 * stored, in the gateway's store) and learns the caller from the consumer headers; forwarding the key would only copy
 * a long-lived secret into backend logs and traces. Kong's key-auth forwards it unless hide_credentials is set.
 */
function removeApiKey(headers: UpstreamHeaders): void {
  delete headers['x-api-key'];
  for (const name of otherApiKeySpellings(headers)) if (holdsGatewayKey(headers[name])) delete headers[name];
  // The verifier admits only keys of the exact shape (apiKeyId), so the shape search finds a key sent as a bearer.
  if (holdsGatewayKey(headers.authorization)) delete headers.authorization;
}

/**
 * The names among `headers` that spell X-API-Key with `_` for some `-` (`x_api_key`, `x-api_key`): node keeps them
 * apart, but a WSGI, Rack or CGI backend reads each as HTTP_X_API_KEY, the very header, so a gateway key sent under
 * one reached such a backend (and its logs) though never under the name itself. Only keys of the gateway's shape
 * are removed from them, as from X-API-Key on an unauthenticated request. Names of another length are never looked
 * at further: the cost is a length check per header.
 */
function otherApiKeySpellings(headers: UpstreamHeaders): string[] {
  let found: string[] | undefined;
  for (const name in headers) {
    if (name.length === 9 && name !== 'x-api-key' && headerKey(name) === 'x-api-key') (found ??= []).push(name);
  }
  return found ?? NONE;
}
const NONE: string[] = [];

/** True when `value` (a repeated X-API-Key arrives joined) holds a key of the gateway's shape anywhere; the substring test keeps the regex off most values. */
function holdsGatewayKey(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  const text = typeof value === 'string' ? value : value.join(',');
  return text.includes('pk_') && API_KEY_INSIDE.test(text);
}

/**
 * A request no key authenticated may still carry one: on a public path, an `auth: off` route, a route that takes
 * only JWTs, or a gateway with auth off. The key is never forwarded there either (README, Security notes): only
 * values holding a key of the gateway's exact shape are removed, so a backend's own `X-API-Key` scheme (or a `pk_`
 * key of another issuer) still reaches it. In `Authorization` the key is looked for anywhere, whatever the scheme
 * or its spelling. `bearerToo`: the Authorization header was not the caller's verified JWT.
 */
function removeUnusedApiKeys(headers: UpstreamHeaders, bearerToo: boolean): void {
  if (holdsGatewayKey(headers['x-api-key'])) delete headers['x-api-key'];
  for (const name of otherApiKeySpellings(headers)) if (holdsGatewayKey(headers[name])) delete headers[name];
  if (bearerToo && holdsGatewayKey(headers.authorization)) delete headers.authorization;
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
