// Which credential a request carries (user access token or API key) and which ones a route accepts; pure.
import { looksLikeApiKey } from '../identity/api-key-format.js';
import { parseBearer } from './bearer.js';

/** A credential kind a route may accept (`middleware.auth.auth_methods`, per route `routes[].auth_methods`). */
export type AuthMethod = 'jwt' | 'api_key';

/** A route's accepted methods, resolved once at start-up (not a list searched per request). */
export interface AcceptedMethods {
  readonly jwt: boolean;
  readonly apiKey: boolean;
}

/** Resolves a configured list; call at start-up / route compilation. */
export function acceptedMethods(list: readonly AuthMethod[]): AcceptedMethods {
  return { jwt: list.includes('jwt'), apiKey: list.includes('api_key') };
}

/** What the request presented. */
export type Credential =
  | { readonly kind: 'none' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'jwt'; readonly token: string }
  /**
   * `token`: a JWT sent in `Authorization` beside `X-API-Key`. It is a second credential, and both must pass (as with
   * two authenticators on one route in Kong or Envoy): forwarded unchecked, a revoked or forged token would reach a
   * backend that verifies tokens from the JWKS and cannot see revocations.
   */
  | { readonly kind: 'api_key'; readonly key: string; readonly token?: string };

const NONE: Credential = { kind: 'none' };
const MALFORMED: Credential = { kind: 'malformed' };

/**
 * Reads `X-API-Key` (only when API keys are accepted; a repeated header is malformed) and `Authorization: Bearer`,
 * where a `pk_` value is an API key and anything else a JWT. A kind the route does not accept counts as malformed,
 * so the client learns its credential was refused (invalid_token), not that none was sent. Beside `X-API-Key`, a
 * bearer JWT must pass as well (`token`); a second key, a malformed bearer value or a JWT the route does not accept
 * is refused. Another scheme (`Authorization: Basic`, for the backend) is no credential of ours and goes through.
 */
export function readCredential(
  headers: { authorization?: string | undefined; 'x-api-key'?: string | string[] | undefined },
  accepted: AcceptedMethods,
): Credential {
  const apiKeyHeader = headers['x-api-key'];
  if (apiKeyHeader !== undefined && accepted.apiKey) {
    if (typeof apiKeyHeader !== 'string' || apiKeyHeader === '') return MALFORMED;
    const key = apiKeyHeader.trim();
    const beside = parseBearer(headers.authorization);
    if (beside.kind === 'none') return { kind: 'api_key', key };
    if (beside.kind === 'malformed' || looksLikeApiKey(beside.token) || !accepted.jwt) return MALFORMED;
    return { kind: 'api_key', key, token: beside.token };
  }
  const bearer = parseBearer(headers.authorization);
  if (bearer.kind !== 'token') return bearer.kind === 'none' ? NONE : MALFORMED;
  if (looksLikeApiKey(bearer.token)) return accepted.apiKey ? { kind: 'api_key', key: bearer.token } : MALFORMED;
  return accepted.jwt ? { kind: 'jwt', token: bearer.token } : MALFORMED;
}
