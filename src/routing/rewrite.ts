// Pure path and Host rewriting for a route: strip_prefix, add_prefix and the Host sent upstream.
import { pathKey } from './conditions.js';

/** How a route rewrites the path it forwards. `prefix` is the route's normalised path_prefix. */
export interface PathRewrite {
  readonly stripPrefix: string | undefined;
  readonly addPrefix: string | undefined;
}

/**
 * The upstream path (without query) for a canonical request path: the matched prefix removed (/users/1 → /1,
 * /users → /), then add_prefix joined with exactly one slash (/1 → /v2/1, / → /v2/).
 */
export function rewritePath(path: string, rewrite: PathRewrite): string {
  let out = path;
  const strip = rewrite.stripPrefix;
  // The route matched the prefix in any case (conditions.ts, pathKey): strip it in any case too.
  if (strip !== undefined && strip !== '/' && (path.length === strip.length || path.charCodeAt(strip.length) === 47) && pathKey(path.slice(0, strip.length)) === pathKey(strip)) {
    out = path.slice(strip.length) || '/';
  }
  const add = rewrite.addPrefix;
  if (add !== undefined && add !== '/') {
    out = (add.endsWith('/') ? add.slice(0, -1) : add) + out;
  }
  return out;
}

/** The Host a route sends upstream: the client's (preserve), the chosen upstream's address:port, or a literal. */
export type HostMode = { readonly kind: 'preserve' } | { readonly kind: 'upstream' } | { readonly kind: 'literal'; readonly value: string };

/** Reads the config value of a route's `host`. */
export function hostModeOf(value: string): HostMode {
  if (value === 'preserve') return { kind: 'preserve' };
  if (value === 'upstream') return { kind: 'upstream' };
  return { kind: 'literal', value };
}
