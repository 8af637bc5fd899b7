// Classifies a request path into a route class once, so each class gets its own ready-made phase list.

/** health: GET /health; auth: the gateway's own /auth/* and JWKS endpoints; proxy: everything else. */
export type RouteClass = 'health' | 'auth' | 'proxy';

export const HEALTH_PATH = '/health';
export const AUTH_PREFIX = '/auth/';
export const JWKS_PATH = '/.well-known/jwks.json';

/** Route class of a path (without query string). */
export function classifyPath(path: string): RouteClass {
  if (path === HEALTH_PATH) return 'health';
  if (path.startsWith(AUTH_PREFIX) || path === JWKS_PATH) return 'auth';
  return 'proxy';
}
