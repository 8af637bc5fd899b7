// Why a request lands where it does: the routes in precedence order for one request, each with the condition that
// failed, up to the winner. Slow and obvious on purpose (used by `portcullis routes --match` and debug logs); the
// tests check that it always agrees with the compiled matcher.
import { exactPathMatches, exactPathSlashed, hostMatches, methodMatch, normalisePrefix, pathKey, prefixMatches, takesHeadAsGet, type MatchInput, type RouteConditions } from './conditions.js';

/** One route's verdict for one request. */
export interface RouteVerdict {
  readonly index: number;
  readonly matched: boolean;
  /** The conditions that held ("host api.example.com", "path_prefix /users", …). */
  readonly held: readonly string[];
  /** The first condition that failed, when `matched` is false. */
  readonly failed?: string;
}

/** The winner (index into the route list, or -1) and the more specific routes tried before it. */
export interface Explanation {
  readonly winner: number;
  readonly verdicts: readonly RouteVerdict[];
}

/** 0 exact host, 1 wildcard, 2 no host condition; for a wildcard, the longer suffix first. */
function hostRank(c: RouteConditions, host: string): [number, number] {
  if (c.hosts === undefined) return [2, 0];
  const exact = c.hosts.find((h) => !h.startsWith('*.') && h === host);
  if (exact !== undefined) return [0, 0];
  const wild = c.hosts.filter((h) => h.startsWith('*.') && hostMatches(h, host)).sort((a, b) => b.length - a.length)[0];
  if (wild !== undefined) return [1, -wild.length];
  // No pattern matches this host: rank the route by its best pattern, so it is listed where a reader expects it.
  return c.hosts.some((h) => !h.startsWith('*.')) ? [0, 0] : [1, -Math.max(...c.hosts.map((h) => h.length))];
}

/** pathRank of an exact path that takes the request's path only through its trailing slash. */
const SLASHED_RANK = -999_999;

/**
 * An exact path before any prefix, and one written as the request spells it before one that takes it through its
 * trailing slash; a longer prefix (in segments) before a shorter one.
 */
function pathRank(c: RouteConditions, requestPath: string | undefined): number {
  if (c.path !== undefined) return requestPath !== undefined && exactPathSlashed(pathKey(c.path), pathKey(requestPath)) ? SLASHED_RANK : -1_000_000;
  const prefix = normalisePrefix(c.pathPrefix ?? '/');
  return prefix === '/' ? 0 : -prefix.split('/').length;
}

/**
 * The precedence key of route `c` at position `index` for this request; smaller wins. Among routes with conditions,
 * a HEAD goes to one listing HEAD before one that takes it only through GET (methodMatch).
 */
function precedenceKey(c: RouteConditions, index: number, host: string, method = '', path?: string): number[] {
  const [h, w] = hostRank(c, host);
  const conditional = c.methods !== undefined || c.headers !== undefined ? 0 : 1;
  return [h, w, pathRank(c, path), conditional, takesHeadAsGet(c, method) ? 1 : 0, index];
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Checks one route's conditions in the order a reader thinks of them, naming each. `withValues` false leaves the
 * request's values out of a failed condition ("header x-key differs", "path is not under /p"): the gateway's debug
 * log writes verdicts, and a header condition's value is often a shared secret, the request's an Authorization;
 * and the log line holds the path and host once beside them, where a verdict each copied a 16 KB path once per
 * route (50 routes: a 767 KB line per 404). `routes --match` shows them.
 */
export function verdictFor(c: RouteConditions, index: number, input: MatchInput, withValues = true): RouteVerdict {
  const held: string[] = [];
  const fail = (failed: string): RouteVerdict => ({ index, matched: false, held, failed });
  const host = withValues ? `host ${input.host || '(none)'}` : 'host';
  const path = withValues ? `path ${input.path}` : 'path';
  if (c.hosts !== undefined) {
    const hit = c.hosts.find((h) => hostMatches(h, input.host));
    if (hit === undefined) return fail(`${host} is not ${c.hosts.join(' or ')}`);
    held.push(`host ${hit}`);
  }
  if (c.path !== undefined) {
    if (!exactPathMatches(c.path, input.path)) return fail(`${path} is not ${c.path}`);
    held.push(`path ${c.path}`);
  } else {
    const prefix = normalisePrefix(c.pathPrefix ?? '/');
    if (!prefixMatches(prefix, input.path)) return fail(`${path} is not under ${prefix}`);
    held.push(`path_prefix ${prefix}`);
  }
  if (c.methods !== undefined) {
    const how = methodMatch(c.methods, input.method);
    if (how === 'no') return fail(`method ${input.method} is not ${c.methods.join(', ')}`);
    held.push(how === 'head-as-get' ? 'method HEAD (as GET)' : `method ${input.method}`);
  }
  if (c.headers !== undefined) {
    for (const name in c.headers) {
      const got = input.header(name);
      if (got !== c.headers[name]) {
        if (!withValues) return fail(`header ${name} ${got === undefined ? 'is absent' : 'differs'}`);
        return fail(`header ${name} is ${got === undefined ? 'absent' : JSON.stringify(got)}, not ${JSON.stringify(c.headers[name])}`);
      }
      held.push(`header ${name}: ${c.headers[name]}`);
    }
  }
  return { index, matched: true, held };
}

/**
 * The routes in this request's precedence order up to and including the winner, each with its verdict. An exact path
 * that takes the request only through its trailing slash yields to the first route after it that takes the request
 * as written (exact or prefix, whatever its host class) when that route guards it more (auth), as the compiled
 * matcher does; so do the other such routes before it.
 */
export function explainMatch(routes: readonly RouteConditions[], input: MatchInput, withValues = true): Explanation {
  const order = routes
    .map((c, index) => ({ c, index, key: precedenceKey(c, index, input.host, input.method, input.path) }))
    .sort((a, b) => compareKeys(a.key, b.key));
  const verdicts: RouteVerdict[] = [];
  /** A twin yielded: the others yield too, up to the route that takes the request as written. */
  let yielding = false;
  for (let i = 0; i < order.length; i++) {
    const { c, index, key } = order[i]!;
    const slashed = key[2] === SLASHED_RANK;
    if (slashed && yielding) {
      verdicts.push({ index, matched: false, held: [], failed: YIELDS });
      continue;
    }
    const verdict = verdictFor(c, index, input, withValues);
    if (verdict.matched && slashed) {
      const asWritten = order.slice(i + 1).find((o) => o.key[2] !== SLASHED_RANK && verdictFor(o.c, o.index, input).matched);
      if (asWritten !== undefined && (asWritten.c.guard ?? 0) > (c.guard ?? 0)) {
        verdicts.push({ index, matched: false, held: verdict.held, failed: YIELDS });
        yielding = true;
        continue;
      }
    }
    verdicts.push(verdict);
    if (verdict.matched) return { winner: index, verdicts };
  }
  return { winner: -1, verdicts };
}

/** Why a route that takes the path only through its trailing slash did not win. */
const YIELDS = 'takes this path only through its trailing slash, and a route with stricter auth takes it as written';

/** Route indexes in their static match order (no request): exact hosts, wildcards, no host; then paths; then conditions. */
export function staticOrder(routes: readonly RouteConditions[]): number[] {
  return routes
    .map((c, index) => ({ index, key: precedenceKey(c, index, '') }))
    .sort((a, b) => compareKeys(a.key, b.key))
    .map((x) => x.index);
}
