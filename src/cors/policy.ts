// CORS decisions as pure functions: is this origin allowed, and which headers answer a preflight or a request.
import type { CorsConfig } from '../config/schema.js';

/** A compiled CORS policy: header values joined once at start-up. */
export interface CorsPolicy {
  readonly anyOrigin: boolean;
  readonly origins: ReadonlySet<string>;
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly credentials: boolean;
  readonly maxAge: string;
}

export function compileCors(config: CorsConfig): CorsPolicy {
  return {
    anyOrigin: config.allowed_origins.includes('*'),
    origins: new Set(config.allowed_origins.filter((o) => o !== '*').map((o) => o.toLowerCase())),
    allowMethods: config.allowed_methods.join(', '),
    allowHeaders: config.allowed_headers.join(', '),
    exposeHeaders: config.expose_headers.join(', '),
    credentials: config.allow_credentials,
    maxAge: String(config.max_age),
  };
}

/** True when `origin` may read responses under this policy. Origins compare case-insensitively (scheme and host). */
export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.anyOrigin || policy.origins.has(origin.toLowerCase());
}

/** Headers on every response to an allowed origin (simple and actual requests). */
export function responseCorsHeaders(policy: CorsPolicy, origin: string): Record<string, string> {
  const headers: Record<string, string> = {
    // "*" only when credentials are off and every origin is allowed; otherwise echo it, and say the answer varies.
    'access-control-allow-origin': policy.anyOrigin && !policy.credentials ? '*' : origin,
  };
  if (policy.credentials) headers['access-control-allow-credentials'] = 'true';
  if (policy.exposeHeaders !== '') headers['access-control-expose-headers'] = policy.exposeHeaders;
  return headers;
}

/** Headers of the gateway's answer to a preflight from an allowed origin. */
export function preflightHeaders(policy: CorsPolicy, origin: string): Record<string, string> {
  const headers = responseCorsHeaders(policy, origin);
  delete headers['access-control-expose-headers'];
  headers['access-control-allow-methods'] = policy.allowMethods;
  headers['access-control-allow-headers'] = policy.allowHeaders;
  headers['access-control-max-age'] = policy.maxAge;
  return headers;
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
export function isPreflight(method: string | undefined, origin: unknown, requestMethod: unknown): boolean {
  return method === 'OPTIONS' && typeof origin === 'string' && typeof requestMethod === 'string';
}
