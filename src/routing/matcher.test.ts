import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RouteMatcher, conditionsHold } from './matcher.js';
import { explainMatch, staticOrder } from './explain.js';
import type { MatchInput, RouteConditions } from './conditions.js';
import { hostOf } from './conditions.js';

function input(method: string, host: string, path: string, headers: Record<string, string> = {}): MatchInput {
  return { method, host, path, header: (name) => headers[name] };
}

/** Names of the winning route for each request, from the compiled matcher and from the slow explanation. */
function winner(routes: readonly (RouteConditions & { name: string })[], req: MatchInput): string | undefined {
  const matcher = new RouteMatcher(routes.map((r) => ({ conditions: r, value: r.name })));
  const fast = matcher.match(req);
  const slow = explainMatch(routes, req).winner;
  assert.equal(fast, slow === -1 ? undefined : routes[slow]!.name, 'the compiled matcher and the explanation agree');
  return fast;
}

/** Checks one precedence rule in both file orders. */
function bothOrders(a: RouteConditions & { name: string }, b: RouteConditions & { name: string }, req: MatchInput, expected: string): void {
  assert.equal(winner([a, b], req), expected, 'a then b');
  assert.equal(winner([b, a], req), expected, 'b then a');
}

describe('route precedence', () => {
  test('a prefix spelt with escapes (or written with them) holds for the paths under it, in the tree and the explanation alike', () => {
    // The explanation (routes --match, and the tree's oracle) found the segment boundary at the prefix's length in the
    // path as sent: "/users/%40me/x" is three characters longer than its key, so it was not under "/users/@me".
    const me = { name: 'me', pathPrefix: '/users/@me' };
    const colon = { name: 'colon', pathPrefix: '/a%3Ab' };
    const rest = { name: 'rest', pathPrefix: '/' };
    for (const path of ['/users/%40me', '/users/%40me/x', '/Users/%40ME/x/y']) assert.equal(winner([me, rest], input('GET', 'h', path)), 'me', path);
    for (const path of ['/a:b/c', '/a%3Ab/c', '/A%3AB']) assert.equal(winner([colon, rest], input('GET', 'h', path)), 'colon', path);
    for (const path of ['/users/%40mex', '/a:bc', '/a%3Abc/d']) assert.equal(winner([me, colon, rest], input('GET', 'h', path)), 'rest', path);
  });

  test('an exact host beats a wildcard host, which beats no host', () => {
    const exact = { name: 'exact', hosts: ['api.example.com'], pathPrefix: '/' };
    const wild = { name: 'wild', hosts: ['*.example.com'], pathPrefix: '/' };
    const none = { name: 'none', pathPrefix: '/' };
    bothOrders(exact, wild, input('GET', 'api.example.com', '/x'), 'exact');
    bothOrders(wild, none, input('GET', 'api.example.com', '/x'), 'wild');
    bothOrders(exact, none, input('GET', 'api.example.com', '/x'), 'exact');
    assert.equal(winner([exact, wild, none], input('GET', 'other.example.com', '/x')), 'wild');
    assert.equal(winner([exact, wild, none], input('GET', 'example.org', '/x')), 'none');
  });

  test('host beats path: an exact host with "/" beats no host with an exact path', () => {
    bothOrders({ name: 'host', hosts: ['a.test'], pathPrefix: '/' }, { name: 'path', path: '/users/1' }, input('GET', 'a.test', '/users/1'), 'host');
  });

  test('an exact path beats a prefix; a longer prefix beats a shorter one', () => {
    const exact = { name: 'exact', path: '/users/me' };
    const long = { name: 'long', pathPrefix: '/users/me' };
    const short = { name: 'short', pathPrefix: '/users' };
    const root = { name: 'root', pathPrefix: '/' };
    bothOrders(exact, long, input('GET', '', '/users/me'), 'exact');
    bothOrders(long, short, input('GET', '', '/users/me/x'), 'long');
    bothOrders(short, root, input('GET', '', '/users/1'), 'short');
    assert.equal(winner([root, short, long, exact], input('GET', '', '/users/me')), 'exact');
    assert.equal(winner([root, short, long, exact], input('GET', '', '/users/me/a')), 'long');
    assert.equal(winner([root, short, long, exact], input('GET', '', '/other')), 'root');
  });

  test('methods or headers conditions beat a route without, at the same path', () => {
    const plain = { name: 'plain', pathPrefix: '/api' };
    const post = { name: 'post', pathPrefix: '/api', methods: ['POST'] };
    const v2 = { name: 'v2', pathPrefix: '/api', headers: { 'x-api-version': '2' } };
    bothOrders(plain, post, input('POST', '', '/api/x'), 'post');
    bothOrders(plain, post, input('GET', '', '/api/x'), 'plain');
    bothOrders(plain, v2, input('GET', '', '/api/x', { 'x-api-version': '2' }), 'v2');
    bothOrders(plain, v2, input('GET', '', '/api/x', { 'x-api-version': '3' }), 'plain');
  });

  test('a route taking GET takes HEAD; one listing HEAD goes first, a route without GET does not take it', () => {
    const plain = { name: 'plain', pathPrefix: '/' };
    const get = { name: 'get', pathPrefix: '/api', methods: ['GET'] };
    const head = { name: 'head', pathPrefix: '/api', methods: ['HEAD'] };
    const post = { name: 'post', pathPrefix: '/api', methods: ['POST'] };
    bothOrders(plain, get, input('HEAD', '', '/api/x'), 'get');
    bothOrders(get, head, input('HEAD', '', '/api/x'), 'head');
    bothOrders(get, head, input('GET', '', '/api/x'), 'get');
    bothOrders(plain, post, input('HEAD', '', '/api/x'), 'plain');
    assert.equal(winner([plain, get, head, post], input('HEAD', '', '/api/x')), 'head');
    assert.equal(winner([plain, get, post], input('HEAD', '', '/api/x')), 'get');
  });

  test('paths compare ASCII case-insensitively, on segment boundaries still', () => {
    const admin = { name: 'admin', pathPrefix: '/Admin' };
    const exact = { name: 'exact', path: '/Status' };
    const root = { name: 'root', pathPrefix: '/' };
    assert.equal(winner([root, admin, exact], input('GET', '', '/ADMIN/x')), 'admin');
    assert.equal(winner([root, admin, exact], input('GET', '', '/admin')), 'admin');
    assert.equal(winner([root, admin, exact], input('GET', '', '/status/')), 'exact');
    assert.equal(winner([root, admin, exact], input('GET', '', '/adminx')), 'root');
    assert.equal(winner([root, admin, exact], input('GET', '', '/status/x')), 'root');
    // An escape of a character a path may hold raw is that character; any other escape stays as written.
    const colon = { name: 'colon', path: '/v1/things:purge' };
    const at = { name: 'at', pathPrefix: '/users/%40me' };
    assert.equal(winner([root, colon, at], input('GET', '', '/v1/things%3Apurge')), 'colon');
    assert.equal(winner([root, colon, at], input('GET', '', '/users/@me/x')), 'at');
    assert.equal(winner([root, colon, at], input('GET', '', '/v1/things%3A%20purge')), 'root');
  });

  test('file order breaks ties', () => {
    const a = { name: 'a', pathPrefix: '/x' };
    const b = { name: 'b', pathPrefix: '/x' };
    assert.equal(winner([a, b], input('GET', '', '/x')), 'a');
    assert.equal(winner([b, a], input('GET', '', '/x')), 'b');
  });

  test('no match: undefined', () => {
    assert.equal(winner([{ name: 'a', pathPrefix: '/a' }, { name: 'b', hosts: ['b.test'], pathPrefix: '/' }], input('GET', 'c.test', '/b')), undefined);
  });
});

describe('route conditions', () => {
  test('a prefix matches on segment boundaries only', () => {
    const users = [{ name: 'users', pathPrefix: '/users' }];
    assert.equal(winner(users, input('GET', '', '/users')), 'users');
    assert.equal(winner(users, input('GET', '', '/users/')), 'users');
    assert.equal(winner(users, input('GET', '', '/users/1')), 'users');
    assert.equal(winner(users, input('GET', '', '/usersx')), undefined);
    assert.equal(winner(users, input('GET', '', '/user')), undefined);
  });

  test('a wildcard host needs at least one label before the suffix, and never matches the bare domain', () => {
    const wild = [{ name: 'w', hosts: ['*.example.com'], pathPrefix: '/' }];
    assert.equal(winner(wild, input('GET', 'a.example.com', '/')), 'w');
    assert.equal(winner(wild, input('GET', 'a.b.example.com', '/')), 'w');
    assert.equal(winner(wild, input('GET', 'example.com', '/')), undefined);
    assert.equal(winner(wild, input('GET', 'badexample.com', '/')), undefined);
  });

  test('a longer wildcard suffix beats a shorter one', () => {
    const short = { name: 'short', hosts: ['*.example.com'], pathPrefix: '/' };
    const long = { name: 'long', hosts: ['*.eu.example.com'], pathPrefix: '/' };
    bothOrders(short, long, input('GET', 'api.eu.example.com', '/'), 'long');
    bothOrders(short, long, input('GET', 'api.us.example.com', '/'), 'short');
  });

  test('Host is read case-insensitively and without its port', () => {
    assert.equal(hostOf('API.Example.COM:8443'), 'api.example.com');
    assert.equal(hostOf('[::1]:8080'), '[::1]');
    assert.equal(hostOf('example.com.'), 'example.com');
    assert.equal(hostOf(undefined), '');
  });

  test('an exact path matches itself, and itself with one trailing slash', () => {
    const r = [{ name: 'p', path: '/status' }];
    assert.equal(winner(r, input('GET', '', '/status')), 'p');
    assert.equal(winner(r, input('GET', '', '/status/')), 'p', 'one trailing slash is the same resource to most backends');
    assert.equal(winner(r, input('GET', '', '/status//')), undefined);
    assert.equal(winner(r, input('GET', '', '/status/x')), undefined);
  });

  test('an exact path written with a trailing slash matches itself without it', () => {
    // A protected "/secret/" and a catch-all with auth off: "/secret" reached the catch-all, and Express (strict
    // routing off, its default) answered it with the "/secret/" handler.
    const r = [{ name: 'secret', path: '/secret/' }, { name: 'all', pathPrefix: '/' }];
    assert.equal(winner(r, input('GET', '', '/secret')), 'secret');
    assert.equal(winner(r, input('GET', '', '/SECRET')), 'secret', 'in any case, as every path');
    assert.equal(winner(r, input('GET', '', '/secret/')), 'secret');
    assert.equal(winner(r, input('GET', '', '/secret//')), 'all', 'one slash only');
    assert.equal(winner([{ name: 'root', path: '/' }], input('GET', '', '')), undefined);
  });

  test('a slash twin never takes a path from a prefix route that guards it more; it does from one that guards it less', () => {
    // "/admin/" open, everything under /admin guarded: "/admin" stays guarded (Spring and Flask serve it apart).
    const landing = { name: 'landing', path: '/admin/' };
    const admin = { name: 'admin', pathPrefix: '/admin', guard: 2 };
    bothOrders(landing, admin, input('GET', '', '/admin'), 'admin');
    bothOrders(landing, admin, input('GET', '', '/admin/'), 'landing');
    // A guarded "/secret/" and an open catch-all: "/secret" is the guarded route's (Express serves both alike).
    bothOrders({ name: 'secret', path: '/secret/', guard: 2 }, { name: 'all', pathPrefix: '/' }, input('GET', '', '/secret'), 'secret');
    // The same guard: the exact path wins, as before.
    bothOrders({ name: 'exact', path: '/x', guard: 1 }, { name: 'prefix', pathPrefix: '/x', guard: 1 }, input('GET', '', '/x/'), 'exact');
    const e = explainMatch([landing, admin], input('GET', '', '/admin'));
    assert.match(e.verdicts[0]!.failed ?? '', /only through its trailing slash/);
  });

  test('whatever hosts the two routes name: a twin on a host never takes a path from a stricter route without hosts', () => {
    const guarded = { name: 'admin', pathPrefix: '/admin', guard: 2 };
    for (const hosts of [['api.example.com'], ['*.example.com']]) {
      const landing = { name: 'landing', hosts, path: '/admin/' };
      bothOrders(landing, guarded, input('GET', 'api.example.com', '/admin'), 'admin');
      bothOrders(landing, guarded, input('GET', 'api.example.com', '/admin/'), 'landing');
      // The stricter route an exact path of its own, as written: it keeps its spelling.
      bothOrders(landing, { name: 'exact', path: '/admin', guard: 2 }, input('GET', 'api.example.com', '/admin'), 'exact');
      // A twin that guards as much keeps the host's precedence.
      bothOrders({ ...landing, guard: 2 }, guarded, input('GET', 'api.example.com', '/admin'), 'landing');
    }
    // A guarded twin on a host still takes the path from an open route of a less specific host class.
    bothOrders({ name: 'secret', hosts: ['api.example.com'], path: '/secret/', guard: 1 }, { name: 'all', pathPrefix: '/' }, input('GET', 'api.example.com', '/secret'), 'secret');
  });

  test('both spellings as routes: each request goes to the route written as it is spelt, in either file order', () => {
    const open = { name: 'open', path: '/status' };
    const guarded = { name: 'guarded', path: '/status/' };
    bothOrders(open, guarded, input('GET', '', '/status'), 'open');
    bothOrders(open, guarded, input('GET', '', '/status/'), 'guarded');
    // Before conditions: a route with methods that takes the path only through its slash comes after one without.
    const getOnly = { name: 'get-only', path: '/status', methods: ['GET'] };
    bothOrders(getOnly, guarded, input('GET', '', '/status/'), 'guarded');
    bothOrders(getOnly, guarded, input('GET', '', '/status'), 'get-only');
  });
});

describe('route matcher against the obvious definition', () => {
  test('random tables: the tree, the explanation and a linear scan pick the same route', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const hosts = ['a.test', 'b.test', '*.test', '*.x.test', 'x.test'];
    const paths = ['/', '/a', '/a/b', '/a/b/c', '/b', '/a/', '/a/b/'];
    const reqHosts = ['a.test', 'b.test', 'y.x.test', 'x.test', 'c.test', 'other'];
    const reqPaths = ['/', '/a', '/a/b', '/a/b/c/d', '/b', '/a/', '/ab', '/c', '/a/b/', '/b/', '/a//'];
    for (let round = 0; round < 300; round++) {
      const routes = Array.from({ length: 1 + rand(8) }, (_, i) => {
        const r: RouteConditions & { name: string } = { name: `r${i}` };
        const m = r as { -readonly [K in keyof typeof r]: (typeof r)[K] };
        if (rand(2)) m.hosts = [hosts[rand(hosts.length)]!];
        if (rand(4) === 0) m.path = paths[rand(paths.length)]!;
        else m.pathPrefix = paths[rand(paths.length)]!;
        if (rand(3) === 0) m.methods = [rand(2) ? 'GET' : 'POST'];
        if (rand(2)) m.guard = rand(3);
        return r;
      });
      for (let k = 0; k < 10; k++) {
        const req = input(rand(2) ? 'GET' : 'POST', reqHosts[rand(reqHosts.length)]!, reqPaths[rand(reqPaths.length)]!);
        const name = winner(routes, req);
        // Whatever won must actually match, and nothing listed as more specific may match.
        if (name !== undefined) assert.ok(conditionsHold(routes.find((r) => r.name === name)!, req));
        else assert.ok(routes.every((r) => !conditionsHold(r, req)));
      }
    }
  });

  test('static order lists exact hosts, wildcards, no host; then exact paths and longer prefixes', () => {
    const routes: (RouteConditions & { name: string })[] = [
      { name: 'root', pathPrefix: '/' },
      { name: 'users', pathPrefix: '/users' },
      { name: 'me', path: '/users/me' },
      { name: 'wild', hosts: ['*.example.com'], pathPrefix: '/' },
      { name: 'exact', hosts: ['api.example.com'], pathPrefix: '/' },
    ];
    assert.deepEqual(staticOrder(routes).map((i) => routes[i]!.name), ['exact', 'wild', 'me', 'users', 'root']);
  });

  test('explain names the condition that failed for each more specific route', () => {
    const routes = [
      { pathPrefix: '/users', methods: ['POST'] },
      { pathPrefix: '/users', headers: { 'x-api-version': '2' } },
      { pathPrefix: '/' },
    ];
    const e = explainMatch(routes, input('GET', 'h', '/users/1', { 'x-api-version': '1' }));
    assert.equal(e.winner, 2);
    assert.deepEqual(
      e.verdicts.map((v) => v.failed),
      ['method GET is not POST', 'header x-api-version is "1", not "2"', undefined],
    );
  });
});
