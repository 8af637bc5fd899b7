import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './load.js';

const SERVICES = `
services:
  users: { upstreams: [{ name: u1, address: 127.0.0.1, port: 3000 }] }
`;

function errorOf(text: string): string {
  try {
    parseConfigText(text);
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

test('route and service errors are one line naming the key path', () => {
  const route = (extra: string) => `${SERVICES}routes:\n  - { name: a, match: { path_prefix: /a }, service: users }\n  - ${extra}\n`;
  assert.equal(errorOf(route('{ name: b, service: userz }')), 'routes[1].service: unknown service "userz"');
  assert.equal(
    errorOf(route('{ name: b, split: [{ service: users, weight: 9 }, { service: nope, weight: 1 }] }')),
    'routes[1].split[1].service: unknown service "nope"',
  );
  assert.equal(errorOf(route('{ name: a, service: users }')), 'routes[1].name: duplicate route name "a"');
  assert.equal(errorOf(route('{ name: health, service: users }')), 'routes[1].name: "health" is reserved for the gateway\'s own routes');
  // `none` labels the requests no route took (404s, requests refused before routing): a route of that name would
  // count any client's unmatched requests as its own traffic, in metrics and on the dashboard.
  assert.equal(errorOf(route('{ name: none, service: users }')), 'routes[1].name: "none" is reserved for the gateway\'s own routes');
  assert.equal(
    errorOf(`services:\n  none: { upstreams: [{ name: u1, address: 127.0.0.1, port: 3000 }] }\nroutes:\n  - { name: a, service: none }\n`),
    'services.none: "none" is reserved (the label of requests that were not proxied)',
  );
  assert.equal(errorOf(route('{ name: b, service: users, auth: required }')), 'routes[1].auth: "required" needs middleware.auth.enabled: true');
  assert.equal(errorOf(route('{ name: b, service: users, rate_limit: gold }')), 'routes[1].rate_limit: unknown policy "gold" (define it in middleware.rate_limit.policies)');
  assert.equal(errorOf(route('{ name: b, service: users, strip_prefix: true }')), 'routes[1].strip_prefix: needs match.path_prefix');
  assert.match(errorOf(route('{ name: b, service: users, request_headers: { set: { X_User_Id: x } } }')), /^routes\[1\]\.request_headers: "x_user_id" is set by the gateway/);
  assert.match(errorOf(route('{ name: b, service: users, response_headers: { remove: [x-request-id] } }')), /^routes\[1\]\.response_headers: "x-request-id"/);
  assert.equal(errorOf(route('{ name: b, service: users, matc: {} }')), 'routes[1].matc: unknown key');
  assert.match(errorOf(route('{ name: b, service: users, split: [{ service: users, weight: 1 }] }')), /^routes\[1\]\.service: set exactly one of service or split/);
  assert.match(errorOf(route('{ name: b, service: users, match: { path: /x, path_prefix: /y } }')), /^routes\[1\]\.match\.path: set either path or path_prefix/);
  assert.match(errorOf(route('{ name: b, service: users, match: { hosts: ["bad host"] } }')), /^routes\[1\]\.match\.hosts\[0\]:/);
  assert.match(errorOf(route('{ name: b, service: users, max_body_size: lots }')), /^routes\[1\]\.max_body_size: must be a size/);
});

test('load_balancing is the service "default": defining both is an error, and routes need a service to go to', () => {
  assert.equal(
    errorOf(`load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }] }\n${SERVICES.replace('users:', 'default:')}`),
    'services.default: the service "default" is already defined by load_balancing',
  );
  assert.match(errorOf(SERVICES), /^routes: without routes every request goes to the service "default"/);
  assert.match(errorOf('server: { listen_port: 8080 }\n'), /^load_balancing: is required/);
});

test('CORS: "*" cannot be combined with credentials', () => {
  const text = `load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }] }\nmiddleware:\n  cors: { allowed_origins: ["*"], allow_credentials: true }\n`;
  assert.match(errorOf(text), /^middleware\.cors\.allowed_origins: "\*" in allowed_origins cannot be combined with allow_credentials/);
});

test('a two-service config with routes, policies and CORS is accepted', () => {
  const config = parseConfigText(
    `${SERVICES}  billing: { upstreams: [{ name: b1, address: 127.0.0.1, port: 3001 }], timeouts: { upstream_response: 5s } }\n` +
      `routes:\n  - { name: users, match: { hosts: ["API.example.com", "*.example.com"], path_prefix: /users/, methods: [get] }, service: users, strip_prefix: true, rate_limit: strict }\n` +
      `middleware: { rate_limit: { policies: { strict: { requests_per_minute: 10, burst_size: 2 } } } }\n`,
  );
  assert.deepEqual(config.routes[0]!.match.hosts, ['api.example.com', '*.example.com']);
  assert.deepEqual(config.routes[0]!.match.methods, ['GET']);
  assert.equal(config.services.billing!.timeouts.upstream_response, 5000);
});

test('a route header rewrite whose value node cannot send is a config error, not a 500 on every request', () => {
  const route = (rewrite: string) => `${SERVICES}routes:\n  - { name: a, service: users, ${rewrite} }\n`;
  for (const value of ['"a\\u0001b"', '"a\\rb"', '"a\\nX-Injected: 1"', '"caf\\u20ac"', '"nul\\u0000"']) {
    for (const key of ['request_headers', 'response_headers']) {
      const message = errorOf(route(`${key}: { set: { x-note: ${value} } }`));
      assert.match(message, new RegExp(`^routes\\[0\\]\\.${key}\\.set\\.x-note: header x-note: value has a character a header cannot carry`), value);
      assert.doesNotMatch(message, /Injected|caf/, 'the value is never quoted');
    }
  }
  assert.equal(errorOf(route('response_headers: { set: { x-note: "tab\\tand latin-1 \\u00e9" }, remove: [server] }')), 'no error');
});

test('rate-limit policies named "default" or "off" are refused: a route naming them would get the main rule or none', () => {
  const withPolicy = (name: string) =>
    `${SERVICES}routes:\n  - { name: a, service: users, rate_limit: "${name}" }\n` +
    `middleware: { rate_limit: { policies: { "${name}": { requests_per_minute: 1, burst_size: 1 } } } }\n`;
  assert.equal(
    errorOf(withPolicy('default')),
    'middleware.rate_limit.policies.default: "default" is reserved (a route\'s rate_limit: default is middleware.rate_limit\'s own rule)',
  );
  assert.equal(
    errorOf(withPolicy('off')),
    'middleware.rate_limit.policies.off: "off" is reserved (a route\'s rate_limit: off turns the limit off)',
  );
  // Refused even with no route naming it, and with the limit disabled: the policy could never be chosen.
  const unused = `${SERVICES}routes:\n  - { name: a, service: users }\nmiddleware: { rate_limit: { enabled: false, policies: { "off": { requests_per_minute: 1, burst_size: 1 } } } }\n`;
  assert.match(errorOf(unused), /^middleware\.rate_limit\.policies\.off: "off" is reserved/);
  assert.equal(errorOf(withPolicy('offline')), 'no error');
});

test('tracing.response_header cannot name a field HTTP gives a meaning to, nor one the gateway owns', () => {
  const withHeader = (name: string) =>
    `${SERVICES}routes:\n  - { name: a, service: users }\ntracing:\n  otlp_endpoint: http://127.0.0.1:4318/v1/traces\n  response_header: ${name}\n`;
  // Content-Length: <trace id> cut every body; Transfer-Encoding beside a Content-Length is a smuggling vector.
  for (const name of ['content-length', 'Transfer-Encoding', 'connection', 'content-type', 'set-cookie', 'location', 'vary', 'cache-control']) {
    assert.match(errorOf(withHeader(name)), /^tracing\.response_header: ".*" is a field HTTP gives a meaning to/, name);
  }
  for (const name of ['x-request-id', 'X-Proxy-By', 'traceparent', 'x-forwarded-for', 'ratelimit-remaining', 'access-control-allow-origin']) {
    assert.match(errorOf(withHeader(name)), /^tracing\.response_header: ".*" is a header the gateway sets or reads itself/, name);
  }
  assert.equal(errorOf(withHeader('X-Trace-Id')), 'no error');
});

test('no config entry is dropped without a word: two spellings of one header name, or a __proto__ key', () => {
  const route = (extra: string) => `${SERVICES}routes:\n  - { name: a, service: users, ${extra} }\n`;
  for (const key of ['request_headers', 'response_headers']) {
    assert.equal(
      errorOf(route(`${key}: { set: { X-Tag: one, x-tag: two } }`)),
      `routes[0].${key}.set.x-tag: "X-Tag" and "x-tag" name the same header: keep one`,
    );
  }
  assert.equal(
    errorOf(route('match: { headers: { X-Env: blue, X-ENV: green } }')),
    'routes[0].match.headers.X-ENV: "X-Env" and "X-ENV" name the same header: keep one',
  );
  // Each was silently dropped: zod builds a map by assignment, and `__proto__` then sets the prototype.
  const proto = 'not a usable key (a JavaScript object cannot hold it)';
  assert.equal(errorOf(route('response_headers: { set: { __proto__: x, x-a: b } }')), `routes[0].response_headers.set.__proto__: ${proto}`);
  assert.equal(errorOf(route('match: { headers: { __proto__: x } }')), `routes[0].match.headers.__proto__: ${proto}`);
  assert.equal(errorOf(`services:\n  __proto__: { upstreams: [{ name: u1, address: 127.0.0.1, port: 3000 }] }\n`), `services.__proto__: ${proto}`);
  assert.equal(errorOf(`${SERVICES}plugins:\n  - { name: p, module: ./p.mjs, config: { __proto__: { admin: true } } }\n`), `plugins[0].config.__proto__: ${proto}`);
  // One spelling each, as before.
  assert.equal(errorOf(route('request_headers: { set: { X-Tag: one } }, match: { headers: { X-Env: blue } }')), 'no error');
});

test('two upstreams of one name in a service are refused: logs, metrics and the dashboard tell upstreams apart by name', () => {
  const twice = (where: string) => `${where}\n    - { name: a, address: 127.0.0.1, port: 3001 }\n    - { name: a, address: 127.0.0.1, port: 3002 }\n`;
  assert.equal(errorOf(twice('load_balancing:\n  upstreams:')), 'load_balancing.upstreams[1].name: duplicate upstream name "a" in this service');
  assert.equal(errorOf(twice('services:\n  s:\n   upstreams:').replace(/\n    -/g, '\n     -')), 'services.s.upstreams[1].name: duplicate upstream name "a" in this service');
  // One name in two services is fine.
  const both = `${SERVICES}  other: { upstreams: [{ name: u1, address: 127.0.0.1, port: 3001 }] }\nroutes:\n  - { name: r, service: other }\n`;
  assert.equal(errorOf(both), 'no error');
});
