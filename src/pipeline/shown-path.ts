// The request path as logs, spans and plugins are shown it. A target the driver refuses (path-check.ts: anything
// but a canonical origin-form target is a 400) is still logged, and some carry secrets a client never meant to
// send: the userinfo of an absolute-form target (`GET http://user:password@host/x`, or `//user:password@host/x`)
// and a fragment (`/cb#access_token=...`, which browsers never send but scripts and broken clients do).

/** Scheme and `//`, or `//` alone, then the authority: where userinfo can be. */
const AUTHORITY_FORM = /^((?:[a-z][a-z0-9+.-]*:)?\/\/)([^/]*)/i;

/**
 * True when `path` (the target without its query) needs shownPath: it is not a plain origin-form path. One or two
 * character reads for every request; indexOf for the fragment is a native scan of a short string.
 */
export function needsShownPath(path: string): boolean {
  return path.charCodeAt(0) !== 0x2f || path.charCodeAt(1) === 0x2f || path.indexOf('#') !== -1;
}

/**
 * `path` without what may be a secret: the fragment, and the userinfo of an authority (`user:pass@`), with or
 * without a scheme. Only for targets the driver refuses: an origin-form path that does not start with `//` and has
 * no `#` is returned as it is, `@` included (`/users/@me` is a path).
 */
export function shownPath(path: string): string {
  const hash = path.indexOf('#');
  let shown = hash === -1 ? path : path.slice(0, hash);
  const authority = AUTHORITY_FORM.exec(shown);
  if (authority !== null) {
    const at = authority[2]!.lastIndexOf('@');
    if (at !== -1) shown = authority[1]! + authority[2]!.slice(at + 1) + shown.slice(authority[0].length);
  } else if (shown.charCodeAt(0) !== 0x2f) {
    // Neither origin- nor absolute-form (`user:pass@host/x`, `host:443`): the part before the first `/` may be an
    // authority, its userinfo included.
    const slash = shown.indexOf('/');
    const head = slash === -1 ? shown : shown.slice(0, slash);
    const at = head.lastIndexOf('@');
    if (at !== -1) shown = shown.slice(at + 1);
  }
  return shown;
}
