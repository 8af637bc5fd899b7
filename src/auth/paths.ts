// The URLs the gateway answers itself for auth; the route table puts them ahead of every user route.

export const AUTH_PREFIX = '/auth/';
export const JWKS_PATH = '/.well-known/jwks.json';

/** True for /auth/* and the JWKS document. */
export function isAuthPath(path: string): boolean {
  return path.startsWith(AUTH_PREFIX) || path === JWKS_PATH;
}

/** The auth API's endpoints, each taking POST alone (auth/routes.ts answers them; anything else under /auth/ is 404). */
export const AUTH_ENDPOINTS: readonly string[] = ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout'];

/**
 * The methods an auth path takes (undefined: no such path), as auth/routes.ts answers them. The JWKS document is a
 * path only where it is served (`jwksServed`: an asymmetric jwt.algorithm; HS256 publishes no key and answers 404).
 */
export function authPathMethods(path: string, jwksServed: boolean): readonly string[] | undefined {
  if (path === JWKS_PATH) return jwksServed ? ['GET', 'HEAD'] : undefined;
  return AUTH_ENDPOINTS.includes(path) ? ['POST'] : undefined;
}
