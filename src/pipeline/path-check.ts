// Refuses request paths that mean different things to different parsers: dot-segments and encoded separators.

/** Encoded "/", "\" or "." : a backend that decodes them would see another path than the one matched here. */
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;
const ENCODED_DOT = /%2e/gi;

/**
 * True when `path` (without its query) holds a "." or ".." segment (also written as %2e), an encoded slash or
 * backslash, or a raw backslash. Public-path matching and auth are decided on the path as written, while many
 * backends normalize it; `/public/../admin` must not reach `/admin` without a token. Envoy and nginx normalize
 * such paths; the gateway refuses them with 400 instead, so what is matched is exactly what is forwarded.
 */
export function isAmbiguousPath(path: string): boolean {
  let candidate = path;
  if (path.indexOf('%') !== -1) {
    if (ENCODED_SEPARATOR.test(path)) return true;
    candidate = path.replace(ENCODED_DOT, '.');
  }
  if (candidate.indexOf('\\') !== -1) return true;
  if (candidate.indexOf('/.') === -1) return false;
  for (const segment of candidate.split('/')) {
    if (segment === '.' || segment === '..') return true;
  }
  return false;
}
