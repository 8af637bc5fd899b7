// The route matcher: compiled once per route table, it finds the winning route without looking at every route.
// Hosts are looked up in a map (exact names, then wildcard suffixes label by label), then paths walk a prefix tree
// of segments, so the cost grows with the depth of the path, not with the number of routes.
import { exactPathMatches, hostMatches, methodMatch, normalisePrefix, pathKey, prefixMatches, type MatchInput, type RouteConditions } from './conditions.js';

/** One route as the matcher sees it: its conditions and what to return when it wins. */
export interface MatcherEntry<T> {
  readonly conditions: RouteConditions;
  readonly value: T;
}

/** A route waiting at a tree node, with the part of its conditions that is checked there. */
interface Candidate<T> {
  readonly index: number;
  readonly entry: MatcherEntry<T>;
  /** Methods or headers conditions: such a route is tried before one without at the same node. */
  readonly conditional: boolean;
}

/**
 * One segment of the path tree: routes whose exact path ends here as written, routes whose exact path ends here give
 * or take one trailing slash (see exactPathMatches), and routes whose prefix ends here.
 */
class PathNode<T> {
  readonly children = new Map<string, PathNode<T>>();
  readonly exact: Candidate<T>[] = [];
  readonly slashed: Candidate<T>[] = [];
  readonly prefix: Candidate<T>[] = [];

  child(segment: string): PathNode<T> {
    let node = this.children.get(segment);
    if (node === undefined) this.children.set(segment, (node = new PathNode<T>()));
    return node;
  }
}

/** Segments of a path: "/" → [""], "/users/1" → ["users", "1"], "/users/" → ["users", ""]. */
function segmentsOf(path: string): string[] {
  return path.slice(1).split('/');
}

/** Where a prefix ends in the tree: "/" is the root itself, "/users" is one segment down. */
function prefixSegments(prefix: string): string[] {
  return prefix === '/' ? [] : segmentsOf(prefix);
}

function byPrecedence<T>(a: Candidate<T>, b: Candidate<T>): number {
  if (a.conditional !== b.conditional) return a.conditional ? -1 : 1;
  return a.index - b.index;
}

function guardOf<T>(c: Candidate<T>): number {
  return c.entry.conditions.guard ?? 0;
}

/** The trailing-slash twin the last HostBucket.match found (matching is synchronous: one holder serves every match). */
const FOUND_TWIN: { twin: Candidate<unknown> | undefined } = { twin: undefined };

/**
 * The winner between the first trailing-slash twin found (`twin`, from a bucket as specific as `hit`'s or more) and
 * the route that takes the path otherwise (`hit`, the first bucket's exact or prefix winner): the twin, unless that
 * would loosen the request's guard. "/admin/" with auth off must not take "/admin" from a `path_prefix: /admin` (or a
 * `path: /admin`) with auth, whatever hosts either names (a backend that serves the two apart, Spring or Flask's
 * strict slashes, then served its protected /admin past the auth), while a protected "/secret/" takes "/secret" from
 * a catch-all with auth off (Express serves both with one handler).
 */
function settle<T>(twin: Candidate<T> | undefined, hit: Candidate<T> | undefined): Candidate<T> | undefined {
  return twin !== undefined && (hit === undefined || guardOf(twin) >= guardOf(hit)) ? twin : hit;
}

/** The nodes a match passed, reused by every match (matching is synchronous, so one array serves them all). */
const TRAIL: unknown[] = [];

/** The routes of one host class (one exact host, one wildcard suffix, or no host condition). */
class HostBucket<T> {
  readonly root = new PathNode<T>();

  add(candidate: Candidate<T>): void {
    const c = candidate.entry.conditions;
    if (c.path !== undefined) {
      const path = pathKey(c.path);
      let parent = this.root;
      let node = this.root;
      for (const s of segmentsOf(path)) {
        parent = node;
        node = node.child(s);
      }
      node.exact.push(candidate);
      // "/admin" also matches "/admin/", and "/admin/" also "/admin": most backends (Express, Spring, ASP.NET Core)
      // serve both as one resource, so the route must cover both, or the other spelling reached another route (a
      // catch-all with auth off) and the same handler. A route written with the spelling sent goes first.
      if (path !== '/') (path.endsWith('/') ? parent : node.child('')).slashed.push(candidate);
    } else {
      let node = this.root;
      for (const s of prefixSegments(pathKey(normalisePrefix(c.pathPrefix ?? '/')))) node = node.child(s);
      node.prefix.push(candidate);
    }
  }

  sort(node: PathNode<T> = this.root): void {
    node.exact.sort(byPrecedence);
    node.slashed.sort(byPrecedence);
    node.prefix.sort(byPrecedence);
    for (const child of node.children.values()) this.sort(child);
  }

  /**
   * Exact path first, then the longest prefix down to the shortest; the first route whose conditions hold wins.
   * Walks the path's segments in place (no split) and keeps the nodes passed in a reused array: a match allocates
   * only the segment strings it looks up. `path` is the request's path as routes compare it (pathKey). A route that
   * takes the path only through its trailing slash is not returned: it is left in FOUND_TWIN, for RouteMatcher.match
   * to weigh against the route that takes the path otherwise, in this bucket or a less specific one.
   */
  match(input: MatchInput, path: string): Candidate<T> | undefined {
    const trail = TRAIL as (PathNode<T> | undefined)[];
    let depth = 0;
    trail[depth++] = this.root;
    let node: PathNode<T> | undefined = this.root;
    let start = 1;
    while (start <= path.length) {
      if (node.children.size === 0) {
        node = undefined;
        break;
      }
      let end = path.indexOf('/', start);
      if (end === -1) end = path.length;
      node = node.children.get(path.slice(start, end));
      if (node === undefined) break;
      trail[depth++] = node;
      start = end + 1;
    }
    let hit: Candidate<T> | undefined;
    let slashed: Candidate<T> | undefined;
    if (node !== undefined) {
      if (node.exact.length > 0) hit = firstMatching(node.exact, input);
      if (hit === undefined && node.slashed.length > 0) slashed = firstMatching(node.slashed, input);
    }
    for (let i = depth - 1; hit === undefined && i >= 0; i--) {
      const prefix = trail[i]!.prefix;
      if (prefix.length > 0) hit = firstMatching(prefix, input);
    }
    trail.fill(undefined, 0, depth);
    FOUND_TWIN.twin = slashed;
    return hit;
  }
}

/**
 * The first candidate of a sorted list (conditional routes first) whose conditions hold. A HEAD taken by a route only
 * through its GET yields to a later conditional route that lists HEAD itself, but still beats a route without
 * conditions (the GET route is the more specific one).
 */
function firstMatching<T>(list: readonly Candidate<T>[], input: MatchInput): Candidate<T> | undefined {
  let headAsGet: Candidate<T> | undefined;
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (!c.conditional) return headAsGet ?? c;
    const held = conditionsMatch(c.entry.conditions, input);
    if (held === 'listed') return c;
    if (held === 'head-as-get' && headAsGet === undefined) headAsGet = c;
  }
  return headAsGet;
}

/** Methods and headers: the conditions checked after the host and path have matched. */
export function extraConditionsHold(c: RouteConditions, input: MatchInput): boolean {
  return conditionsMatch(c, input) !== 'no';
}

/**
 * extraConditionsHold, saying whether a HEAD held without the route naming HEAD ('head-as-get': through its GET, or
 * with no `methods` at all). Either kind yields to a later route that names HEAD, and among themselves keeps file
 * order: a route without `methods` counted as naming HEAD made a HEAD skip an earlier GET route that its GET took
 * (`methods: [GET]` with auth, then a `headers` route with auth off: HEAD with the header reached the open route).
 */
function conditionsMatch(c: RouteConditions, input: MatchInput): 'no' | 'listed' | 'head-as-get' {
  const method = c.methods === undefined ? (input.method === 'HEAD' ? 'head-as-get' : 'listed') : methodMatch(c.methods, input.method);
  if (method === 'no') return 'no';
  if (c.headers !== undefined) {
    for (const name in c.headers) if (input.header(name) !== c.headers[name]) return 'no';
  }
  return method;
}

/**
 * Compiled routes. Precedence: a route with an exact host beats a wildcard host (longer suffix first), which beats
 * no host; then an exact path as written beats one that takes the path through its trailing slash, which beats a
 * prefix unless the prefix's route guards the path more (auth), and a longer prefix beats a shorter one; then a route with methods or
 * headers conditions beats one without (for a HEAD, one listing HEAD before one that takes it through GET); then the
 * order of the list.
 */
export class RouteMatcher<T> {
  readonly #exactHosts = new Map<string, HostBucket<T>>();
  /** Keyed by ".example.com" for "*.example.com". */
  readonly #wildcards = new Map<string, HostBucket<T>>();
  readonly #anyHost = new HostBucket<T>();
  readonly size: number;

  constructor(entries: readonly MatcherEntry<T>[]) {
    this.size = entries.length;
    entries.forEach((entry, index) => {
      const c = entry.conditions;
      const candidate: Candidate<T> = { index, entry, conditional: c.methods !== undefined || c.headers !== undefined };
      if (c.hosts === undefined) {
        this.#anyHost.add(candidate);
        return;
      }
      for (const pattern of new Set(c.hosts)) {
        const map = pattern.startsWith('*.') ? this.#wildcards : this.#exactHosts;
        const key = pattern.startsWith('*.') ? pattern.slice(1) : pattern;
        let bucket = map.get(key);
        if (bucket === undefined) map.set(key, (bucket = new HostBucket<T>()));
        bucket.add(candidate);
      }
    });
    for (const bucket of [...this.#exactHosts.values(), ...this.#wildcards.values(), this.#anyHost]) bucket.sort();
  }

  /**
   * The winning route's value, or undefined when no route matches. The buckets from the most specific host on: the
   * first one with a route that takes the path as written (exact or prefix) decides, weighed against the first
   * trailing-slash twin found on the way (settle).
   */
  match(input: MatchInput): T | undefined {
    const host = input.host;
    const path = pathKey(input.path);
    let twin: Candidate<T> | undefined;
    if (this.#exactHosts.size > 0) {
      const bucket = this.#exactHosts.get(host);
      if (bucket !== undefined) {
        const hit = bucket.match(input, path);
        twin = FOUND_TWIN.twin as Candidate<T> | undefined;
        if (hit !== undefined) return settle(twin, hit)!.entry.value;
      }
    }
    if (this.#wildcards.size > 0) {
      // ".b.example.com", then ".example.com", then ".com": the longer suffix is the more specific wildcard.
      for (let dot = host.indexOf('.', 1); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        const bucket = this.#wildcards.get(host.slice(dot));
        if (bucket === undefined) continue;
        const hit = bucket.match(input, path);
        twin ??= FOUND_TWIN.twin as Candidate<T> | undefined;
        if (hit !== undefined) return settle(twin, hit)!.entry.value;
      }
    }
    const hit = this.#anyHost.match(input, path);
    twin ??= FOUND_TWIN.twin as Candidate<T> | undefined;
    return settle(twin, hit)?.entry.value;
  }
}

/** True when every condition of `c` holds for `input` (the slow, obvious definition the tree must agree with). */
export function conditionsHold(c: RouteConditions, input: MatchInput): boolean {
  if (c.hosts !== undefined && !c.hosts.some((h) => hostMatches(h, input.host))) return false;
  if (c.path !== undefined && !exactPathMatches(c.path, input.path)) return false;
  if (c.path === undefined && !prefixMatches(normalisePrefix(c.pathPrefix ?? '/'), input.path)) return false;
  return extraConditionsHold(c, input);
}
