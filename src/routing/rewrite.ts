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
  if (strip !== undefined && strip !== '/') {
    const end = prefixEnd(path, strip);
    if (end !== -1) out = path.slice(end) || '/';
  }
  const add = rewrite.addPrefix;
  if (add !== undefined && add !== '/') {
    out = (add.endsWith('/') ? add.slice(0, -1) : add) + out;
  }
  return out;
}

/**
 * Where the route's prefix ends in `path`: after as many segments as `strip` has, when those compare equal to it as
 * routes compare paths (conditions.ts, pathKey: in any case, an escape as its character), else -1. The route matched
 * the prefix in any such spelling, so it is stripped in any; the rest of the path keeps its own.
 */
function prefixEnd(path: string, strip: string): number {
  let end = 0;
  for (let i = strip.indexOf('/'); i !== -1; i = strip.indexOf('/', i + 1)) {
    if (end === path.length) return -1;
    const next = path.indexOf('/', end + 1);
    end = next === -1 ? path.length : next;
  }
  return pathKey(path.slice(0, end)) === pathKey(strip) ? end : -1;
}

/** The Host a route sends upstream: the client's (preserve), the chosen upstream's address:port, or a literal. */
export type HostMode = { readonly kind: 'preserve' } | { readonly kind: 'upstream' } | { readonly kind: 'literal'; readonly value: string };

/** Reads the config value of a route's `host`. */
export function hostModeOf(value: string): HostMode {
  if (value === 'preserve') return { kind: 'preserve' };
  if (value === 'upstream') return { kind: 'upstream' };
  return { kind: 'literal', value };
}
