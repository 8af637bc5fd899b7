// The URLs the gateway answers itself for auth; the route table puts them ahead of every user route.

export const AUTH_PREFIX = '/auth/';
export const JWKS_PATH = '/.well-known/jwks.json';

/** True for /auth/* and the JWKS document. */
export function isAuthPath(path: string): boolean {
  return path.startsWith(AUTH_PREFIX) || path === JWKS_PATH;
}
