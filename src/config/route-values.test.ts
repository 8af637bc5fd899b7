// Route and CORS values that can never work are config errors naming the key and the rule; working values still load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfigObject, parseConfigText } from './load.js';
import type { Config } from './schema.js';

const SERVICES = { users: { upstreams: [{ name: 'u1', address: '127.0.0.1', port: 3000 }] } };

/** A config with these routes (each gets a name and the service unless it sets them) and middleware. */
function configWith(routes: Record<string, unknown>[], middleware: Record<string, unknown> = {}): unknown {
  return { services: SERVICES, routes: routes.map((r, i) => ({ name: `r${i}`, service: 'users', ...r })), middleware };
}

function errorOf(input: unknown): string {
  try {
    parseConfigObject(input);
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

function load(input: unknown): Config {
  return parseConfigObject(input);
}

/** Each refused value with the rule its message must name, for one key of one route. */
function assertRefused(cases: readonly (readonly [value: string, rule: RegExp])[], route: (value: string) => Record<string, unknown>, key: string): void {
  for (const [value, rule] of cases) {
    const message = errorOf(configWith([route(value)]));
    assert.ok(message.startsWith(`routes[0].${key}: `), `${JSON.stringify(value)}: ${message}`);
    assert.match(message, rule, JSON.stringify(value));
  }
}

test('"*" in path or path_prefix is refused, with what to write instead', () => {
  const prefix = (v: string) => ({ match: { path_prefix: v } });
  assertRefused(
    [
      ['/admin/*', /no wildcards, and path_prefix already matches everything under it: use \/admin$/],
      ['/admin/**', /use \/admin$/],
      ['/*', /use \/$/],
      ['/api/*/items', /must not contain "\*": there are no wildcards in route paths/],
      ['/admin*', /must not contain "\*"/],
    ],
    prefix,
    'match.path_prefix',
  );
  assertRefused(
    [
      ['/admin/*', /path is one exact path: for everything under it use path_prefix: \/admin$/],
      ['/files/*.png', /must not contain "\*"/],
    ],
    (v) => ({ match: { path: v } }),
    'match.path',
  );
});

test('a query in path or path_prefix is refused', () => {
  const rule = /must not contain "\?": routes match the path only, never the query/;
  assertRefused([['/api?x', rule], ['/?', rule], ['/search?q=1&r=2', rule]], (v) => ({ match: { path_prefix: v } }), 'match.path_prefix');
  assertRefused([['/status?full=1', rule], ['/a?', rule]], (v) => ({ match: { path: v } }), 'match.path');
});

test('a path or path_prefix the gateway would refuse as a request target is refused, naming the rule', () => {
  const never = /is not a canonical path: .*the gateway refuses such request targets with 400 before routing, so this route could never match$/;
  const cases = [
    ['/a b', /character that must be percent-encoded/],
    ['/x/../y;z', /dot-segment \(\.\.\)/],
    ['/a/./b', /dot-segment \(\.\)/],
    ['/..', /dot-segment \(\.\.\)/],
    ['/x;jsessionid=1', /path parameters \(;\)/],
    ['/a//b', /empty path segment/],
    ['//', /empty path segment/],
    ['/%2e%2e/admin', /upper-case hex/],
    ['/%2E%2E/admin', /percent-encoded unreserved character/],
    ['/a%2Fb', /encoded slash/],
    ['/a%252e', /double encoding/],
    ['/a%zz', /malformed percent-encoding/],
    ['/café', /non-ASCII/],
    ['/a\\b', /backslash/],
    ['/a#b', /fragment/],
    ['/a\tb', /control character/],
  ] as const;
  for (const key of ['path', 'path_prefix'] as const) {
    for (const [value, rule] of cases) {
      const message = errorOf(configWith([{ match: { [key]: value } }]));
      assert.ok(message.startsWith(`routes[0].match.${key}: `), `${JSON.stringify(value)}: ${message}`);
      assert.match(message, rule, JSON.stringify(value));
      assert.match(message, never, JSON.stringify(value));
    }
  }
  // The schema's own rule still names a value without the leading slash.
  assert.match(errorOf(configWith([{ match: { path_prefix: 'api' } }])), /^routes\[0\]\.match\.path_prefix: .*"\/"/);
});

test('add_prefix must be a canonical path without a query', () => {
  const broken = /is not a canonical path: .*; the gateway never forwards a non-canonical target, so every request would fail$/;
  assertRefused(
    [
      ['/public/../admin', /dot-segment \(\.\.\)/],
      ['/v2/./x', /dot-segment \(\.\)/],
      ['/x//', /empty path segment/],
      ['/v 2', /character that must be percent-encoded/],
      ['/v2;x', /path parameters/],
      ['/%41pi', /percent-encoded unreserved/],
      ['/v2\\x', /backslash/],
    ],
    (v) => ({ add_prefix: v }),
    'add_prefix',
  );
  for (const value of ['/public/../admin', '/x//', '/v 2']) assert.match(errorOf(configWith([{ add_prefix: value }])), broken);
  assertRefused(
    [
      ['/v2?role=admin&', /must not contain "\?": the request path is appended to it, so it would become part of a query/],
      ['/?', /must not contain "\?"/],
    ],
    (v) => ({ add_prefix: v }),
    'add_prefix',
  );
});

test('a literal host must be an authority a backend reads as one host', () => {
  const rule = /^routes\[0\]\.host: must be preserve, upstream, or a literal host\[:port\] \(a name, dotted-quad IPv4 or \[IPv6\]\): /;
  for (const [value, why] of [
    ['a b\r\nx-injected: 1', /character not allowed in a host name/],
    ['internal.svc\r\nx: 1', /character not allowed/],
    ['x@admin.example.com', /user information/],
    ['admin.example.com/x', /character not allowed|characters after the host/],
    ['127.1', /dotted-quad/],
    ['example.com:99999', /port out of range/],
    ['example.com:http', /port that is not a number/],
    ['[::1', /unterminated IPv6 literal/],
    ['[0:0::1]', /canonical form/],
    ['a..b', /empty label/],
  ] as const) {
    const message = errorOf(configWith([{ host: value }]));
    assert.match(message, rule, JSON.stringify(value));
    assert.match(message, why, JSON.stringify(value));
  }
  assert.equal(errorOf(configWith([{ host: 'Preserve' }])), 'routes[0].host: must be "preserve" in lower case (any other spelling is sent as a literal Host)');
  assert.match(errorOf(configWith([{ host: 'UPSTREAM' }])), /^routes\[0\]\.host: must be "upstream" in lower case/);
  assert.match(errorOf(configWith([{ host: '' }])), /^routes\[0\]\.host: /);
});

test('CORS origins that can never equal an Origin header are refused, in middleware.cors and a route\'s cors', () => {
  const cases = [
    ['https://app.example.com/', /no path or trailing slash: use https:\/\/app\.example\.com$/],
    ['https://app.example.com/app', /no path or trailing slash: use https:\/\/app\.example\.com$/],
    ['https://app.example.com?x=1', /no path or trailing slash/],
    ['https://app.example.com#x', /no path or trailing slash/],
    ['https://*.example.com', /must not contain a wildcard: origins compare exactly, so list each origin/],
    ['*.example.com', /must not contain a wildcard/],
    ['https://app.*', /must not contain a wildcard/],
    ['app.example.com', /must be "\*" or an origin: a scheme and :\/\//],
    ['//app.example.com', /must be "\*" or an origin/],
    ['1http://app.example.com', /must be "\*" or an origin/],
    ['chrome-extension://abc/page.html', /no path or trailing slash: use chrome-extension:\/\/abc$/],
    ['http:/app.example.com', /must be "\*" or an origin/],
    ['null', /must not be "null"/],
    ['https://', /no host after https:\/\//],
    ['https://user@app.example.com', /user information/],
    ['https://app example.com', /character not allowed/],
    ['https://127.1', /dotted-quad/],
    ['https://app.example.com:443', /without its default port \(browsers leave it out\): use https:\/\/app\.example\.com$/],
    ['http://localhost:80', /default port.*: use http:\/\/localhost$/],
    ['https://app.example.com:', /empty port: use https:\/\/app\.example\.com$/],
    ['https://app.example.com:08443', /leading zero/],
    ['https://app.example.com:99999', /port out of range/],
    ['http://[::1', /unterminated IPv6/],
  ] as const;
  for (const [value, rule] of cases) {
    const global = errorOf(configWith([{}], { cors: { allowed_origins: ['https://ok.example.com', value] } }));
    assert.ok(global.startsWith('middleware.cors.allowed_origins[1]: '), `${JSON.stringify(value)}: ${global}`);
    assert.match(global, rule, JSON.stringify(value));
    const own = errorOf(configWith([{ cors: { allowed_origins: [value] } }]));
    assert.ok(own.startsWith('routes[0].cors.allowed_origins[0]: '), `${JSON.stringify(value)}: ${own}`);
  }
});

test('origins of any scheme load: webviews and extensions send capacitor://, tauri://, chrome-extension://', () => {
  for (const origin of ['capacitor://localhost', 'ionic://localhost', 'tauri://localhost', 'chrome-extension://abcdefghijklmnopabcdefghijklmnop', 'app+x.y-z://host:8080', 'https://app.example.com:8443', 'http://localhost:3000']) {
    assert.equal(errorOf(configWith([{}], { cors: { allowed_origins: [origin] } })), 'no error', origin);
  }
});

test('two routes with the same normalised match conditions are an error naming both', () => {
  const dup = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    errorOf(configWith([{ name: 'first', match: a }, { name: 'other', match: { path: '/elsewhere' } }, { name: 'second', match: b }]));
  const later = 'routes[2].match: same match conditions as routes[0] ("first"), which the matcher tries first: route "second" can never be chosen';
  assert.equal(dup({ hosts: ['API.example.com'], path_prefix: '/x' }, { hosts: ['api.example.com'], path_prefix: '/x' }), later);
  assert.equal(dup({ path_prefix: '/x/' }, { path_prefix: '/x' }), later);
  assert.equal(dup({}, { path_prefix: '/' }), later);
  assert.equal(dup({ path: '/status' }, { path: '/status' }), later);
  // Paths compare ASCII case-insensitively (routing/conditions.ts, pathKey): these are one route's conditions.
  assert.equal(dup({ path_prefix: '/Users' }, { path_prefix: '/users' }), later);
  assert.equal(dup({ path: '/caf%C3%A9' }, { path: '/CAF%C3%A9' }), later);
  assert.equal(dup({ hosts: ['a.example.com', '*.example.com'] }, { hosts: ['*.Example.com', 'a.example.com', 'a.example.com'] }), later);
  assert.equal(dup({ path_prefix: '/x', methods: ['get', 'POST'] }, { path_prefix: '/x', methods: ['POST', 'GET'] }), later);
  assert.equal(dup({ headers: { 'X-Api-Version': '2', 'x-b': 'b' } }, { headers: { 'x-b': 'b', 'x-api-version': '2' } }), later);
  // headers: {} requires nothing but makes a route "conditional", which the matcher tries first: the plain one is dead.
  assert.equal(
    dup({ path_prefix: '/x' }, { path_prefix: '/x', headers: {} }),
    'routes[0].match: same match conditions as routes[2] ("second"), which the matcher tries first: route "first" can never be chosen',
  );

  // Not exact duplicates: each of these pairs loads (shadowing by a broader route is legitimate).
  for (const [a, b] of [
    [{ path_prefix: '/x' }, { path: '/x' }],
    [{ path_prefix: '/x' }, { path_prefix: '/x/y' }],
    [{ path: '/admin' }, { path: '/admin/' }],
    [{ hosts: ['a.example.com'] }, { hosts: ['a.example.com', 'b.example.com'] }],
    [{ hosts: ['a.example.com'] }, { hosts: ['*.example.com'] }],
    [{ hosts: ['a.example.com'] }, {}],
    [{ methods: ['GET'] }, { methods: ['GET', 'HEAD'] }],
    [{ methods: ['GET'] }, {}],
    [{ headers: { 'x-v': '1' } }, { headers: { 'x-v': '2' } }],
    [{ headers: { 'x-v': 'a' } }, { headers: { 'x-v': 'A' } }],
  ] as const) {
    assert.doesNotThrow(() => load(configWith([{ name: 'first', match: a }, { name: 'second', match: b }])), JSON.stringify([a, b]));
  }
});

test('ordinary paths, prefixes, hosts and origins still load, origins in lower case', () => {
  const paths = ['/', '/users', '/users/', '/api/v1', '/caf%C3%A9', '/a-b_c.d~e', '/@me', '/v1/things:batch', '/a+b', '/.well-known', '/x..y', '/a=b,c', "/it's"];
  // One config per path: "/users" and "/users/" are the same prefix, so one config with both would be refused.
  for (const path of paths) {
    assert.equal(load(configWith([{ match: { path_prefix: path } }, { match: { path } }])).routes[1]!.match.path, path);
  }
  const config = load(
    configWith(
      [
        ...['/', '/v2', '/v2/', '/api/v1/', '/caf%C3%A9', '/~x'].map((add_prefix, i) => ({ match: { path_prefix: `/add${i}` }, add_prefix })),
        ...['preserve', 'upstream', 'internal.users', 'internal.users:8080', 'users_svc', '10.0.0.5', '10.0.0.5:8443', '[::1]', '[::1]:8080', 'api.example.com.'].map(
          (host, i) => ({ match: { path_prefix: `/host${i}` }, host }),
        ),
      ],
      {
        cors: {
          allowed_origins: [
            'https://app.example.com',
            'http://localhost:3000',
            'http://127.0.0.1:8080',
            'http://[::1]:5173',
            'https://app.example.com:8443',
            'HTTPS://App.Example.COM:9443',
          ],
        },
      },
    ),
  );
  assert.deepEqual(config.middleware.cors!.allowed_origins.at(-1), 'https://app.example.com:9443');
  assert.equal(config.routes.find((r) => r.match.path_prefix === '/host2')!.host, 'internal.users');
  assert.deepEqual(load(configWith([{}], { cors: { allowed_origins: ['*'] } })).middleware.cors!.allowed_origins, ['*']);
});

test('every route and CORS value in the README, config/ and the route example loads', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /^\s*(routes|cors|\s*- name):|allowed_origins|path_prefix/m.test(b));
  assert.ok(blocks.length > 0, 'the README has route examples');
  const env = { ADMIN_TOKEN: 'x'.repeat(32), JWT_SECRET: 'y'.repeat(32) };
  for (const block of blocks) {
    const base = /^(load_balancing|services):/m.test(block) ? '' : 'load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }] }\n';
    assert.doesNotThrow(() => parseConfigText(base + block, env), block);
  }
  for (const file of ['proxy.yaml', 'demo.yaml', 'routes.example.yaml']) {
    const text = readFileSync(new URL(`../../config/${file}`, import.meta.url), 'utf8');
    assert.doesNotThrow(() => parseConfigText(text, env), file);
  }
});
