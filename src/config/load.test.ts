// Unit tests of config loading: the seed's sample, ${VAR} expansion, .env, and "key.path: reason" errors.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText, resolveConfigPath } from './load.js';
import { configErrorOf as errorOf } from '../../test/helpers/config-error.js';
import { loadDotEnv } from './env.js';

/** The "Configuration" sample of the seed README, verbatim (trailing spaces included). */
const SEED_SAMPLE = `server:
  listen_port: 8080
  max_connections: 1000

load_balancing:
  strategy: "round_robin"  # round_robin, random, least_conn
  upstreams:
    - name: "backend1"
      address: "127.0.0.1"
      port: 3000
      weight: 1

middleware:
  auth:
    enabled: true
    auth_type: "jwt"  # jwt (default for dynamic tokens)
  
  rate_limit:
    enabled: true
    requests_per_minute: 100
    burst_size: 10
`;

const MINIMAL = (extra = '') => `load_balancing:
  upstreams:
    - { name: a, address: 127.0.0.1, port: 3000 }
${extra}`;


describe('parseConfigText', () => {
  test('the seed sample loads as written, defaults filled in', () => {
    const config = parseConfigText(SEED_SAMPLE, {});
    assert.equal(config.server.listen_port, 8080);
    assert.equal(config.server.max_connections, 1000);
    assert.equal(config.load_balancing!.strategy, 'round_robin');
    assert.deepEqual(config.load_balancing!.upstreams, [{ name: 'backend1', address: '127.0.0.1', port: 3000, weight: 1 }]);
    assert.equal(config.middleware.auth.enabled, true);
    assert.equal(config.middleware.auth.auth_type, 'jwt');
    assert.equal(config.middleware.rate_limit.enabled, true);
    assert.equal(config.middleware.rate_limit.requests_per_minute, 100);
    assert.equal(config.middleware.rate_limit.burst_size, 10);
    assert.equal(config.server.timeouts.upstream_response, 30_000);
  });

  test('${VAR} and ${VAR:-default} are expanded; unquoted values keep their YAML type', () => {
    const text = `server:
  listen_port: \${GW_PORT:-8081}
  proxy_by: "\${GW_NAME}"
load_balancing:
  upstreams:
    - name: a
      address: "\${UP_HOST:-127.0.0.1}"
      port: \${UP_PORT}
`;
    const withDefaults = parseConfigText(text, { GW_NAME: 'edge', UP_PORT: '3005' });
    assert.equal(withDefaults.server.listen_port, 8081);
    assert.equal(withDefaults.server.proxy_by, 'edge');
    assert.equal(withDefaults.load_balancing!.upstreams[0]!.address, '127.0.0.1');
    assert.equal(withDefaults.load_balancing!.upstreams[0]!.port, 3005);
    const set = parseConfigText(text, { GW_PORT: '9000', GW_NAME: 'x', UP_HOST: '10.0.0.9', UP_PORT: '1' });
    assert.equal(set.server.listen_port, 9000);
    assert.equal(set.load_balancing!.upstreams[0]!.address, '10.0.0.9');
    // An empty variable takes the default, as in the shell.
    assert.equal(parseConfigText(text, { GW_PORT: '', GW_NAME: 'x', UP_PORT: '1' }).server.listen_port, 8081);
  });

  test('${VAR} without a value or default names the variable', () => {
    assert.match(errorOf(MINIMAL('jwt:\n  secret: "${NOPE_SECRET}"\n')), /NOPE_SECRET/);
  });

  test('placeholders inside comments are ignored', () => {
    const config = parseConfigText(MINIMAL('# uses ${UNSET_IN_COMMENT}\n'), {});
    assert.equal(config.load_balancing!.upstreams.length, 1);
  });

  test('durations accept units and bare seconds, and are milliseconds after parsing', () => {
    const config = parseConfigText(
      MINIMAL('server:\n  timeouts:\n    upstream_response: 300ms\n    header: 2\n    shutdown_drain: "1m"\n'),
      {},
    );
    assert.equal(config.server.timeouts.upstream_response, 300);
    assert.equal(config.server.timeouts.header, 2_000);
    assert.equal(config.server.timeouts.shutdown_drain, 60_000);
  });
});

describe('config errors name the key path', () => {
  test('unknown strategy', () => {
    const message = errorOf(MINIMAL().replace('load_balancing:\n', 'load_balancing:\n  strategy: fastest\n'));
    assert.match(message, /^load_balancing\.strategy: /);
    assert.match(message, /round_robin/);
  });

  test('port out of range', () => {
    assert.match(errorOf(MINIMAL().replace('3000', '70000')), /^load_balancing\.upstreams\[0\]\.port: must be between 1 and 65535/);
    assert.match(errorOf(MINIMAL('server:\n  listen_port: -1\n')), /^server\.listen_port: /);
  });

  test("a value out of range is said in the config errors' words, not zod's", () => {
    assert.equal(errorOf(MINIMAL().replace('3000', '3000, weight: 0')), 'load_balancing.upstreams[0].weight: must be at least 1');
    assert.equal(errorOf(MINIMAL().replace('3000', '3000, weight: 1001')), 'load_balancing.upstreams[0].weight: must be at most 1000');
    assert.equal(errorOf(MINIMAL().replace('load_balancing:\n', 'load_balancing:\n  retries: 6\n')), 'load_balancing.retries: must be at most 5');
    assert.equal(
      errorOf(MINIMAL('middleware:\n  rate_limit:\n    requests_per_minute: 0\n')),
      'middleware.rate_limit.requests_per_minute: must be greater than 0',
    );
    assert.equal(errorOf(MINIMAL().replace('name: a', 'name: ""')), 'load_balancing.upstreams[0].name: must be at least 1 character long');
    // A rule with its own message keeps it.
    assert.match(errorOf(MINIMAL('server:\n  listen_port: 70000\n')), /^server\.listen_port: must be between 0 and 65535$/);
    // Past the safe-integer range too: zod's own bound (9007199254740991) is not the key's.
    assert.equal(errorOf(MINIMAL('server:\n  listen_port: 1e23\n')), 'server.listen_port: must be between 0 and 65535');
    assert.equal(errorOf(MINIMAL('server:\n  listen_port: -1e23\n')), 'server.listen_port: must be between 0 and 65535');
    assert.equal(errorOf(MINIMAL().replace('3000', '3000, weight: 99999999999999999999')), 'load_balancing.upstreams[0].weight: must be at most 1000');
    assert.equal(errorOf(MINIMAL().replace('load_balancing:\n', 'load_balancing:\n  retries: 1e30\n')), 'load_balancing.retries: must be at most 5');
  });

  test("a string of the wrong form and a refused record key are said in the config errors' words, not zod's", () => {
    assert.equal(
      errorOf(MINIMAL().replace('load_balancing:\n', 'load_balancing:\n  health_check:\n    path: health\n')),
      'load_balancing.health_check.path: must start with "/"',
    );
    assert.equal(
      errorOf(MINIMAL('middleware:\n  auth:\n    public_paths: [health]\n')),
      'middleware.auth.public_paths[0]: must start with "/"',
    );
    // A record key (service and policy names) gets its key rule's own words, the key named in the path.
    assert.equal(
      errorOf(MINIMAL('services:\n  "café":\n    upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }]\n')),
      'services.café: must be 1-64 letters, digits, ".", "_" or "-"',
    );
    assert.equal(
      errorOf(MINIMAL('middleware:\n  rate_limit:\n    policies:\n      "-x": { requests_per_minute: 5 }\n')),
      'middleware.rate_limit.policies.-x: must be 1-64 letters, digits, ".", "_" or "-"',
    );
  });

  test('no upstreams', () => {
    assert.match(errorOf('load_balancing:\n  upstreams: []\n'), /^load_balancing\.upstreams: at least one upstream/);
    assert.match(errorOf('server:\n  listen_port: 8080\n'), /^load_balancing: is required/);
  });

  test("a typo'd key is named with its full path", () => {
    assert.equal(errorOf(MINIMAL('server:\n  listen_prot: 8080\n')), 'server.listen_prot: unknown key');
    assert.match(errorOf(MINIMAL().replace('port: 3000', 'port: 3000, wieght: 2')), /^load_balancing\.upstreams\[0\]\.wieght: unknown key/);
  });

  test('bad duration', () => {
    assert.match(
      errorOf(MINIMAL('server:\n  timeouts:\n    upstream_response: soon\n')),
      /^server\.timeouts\.upstream_response: must be a duration/,
    );
  });

  test('invalid YAML names the line, and never quotes the source', () => {
    assert.match(errorOf('server:\n  listen_port: 8080\n  listen_host: "a" b\nadmin: {}\n'), /invalid YAML at line 3(?: \(.+\))?$/);
    assert.match(errorOf('a: 1\n\tb: 2\n'), /invalid YAML at line 2(?: \(.+\))?$/);
    assert.match(errorOf('a: 1\nb: 2\na: 3\n'), /invalid YAML at line 3(?: \(.+\))?$/);
    const secret = errorOf('jwt:\n  secret: hunter2-secret-value\n  other: [1, 2\nlogging: {}\n');
    assert.match(secret, /invalid YAML at line 4(?: \(.+\))?$/);
    assert.doesNotMatch(secret, /hunter2/);
  });
});

describe('a wrong type says what was expected, never "is required", and never repeats the value', () => {
  test('a present key of the wrong type names the expected type', () => {
    assert.equal(errorOf(MINIMAL('database:\n  pool_size: "abc"\n')), 'database.pool_size: must be a number');
    assert.equal(errorOf(MINIMAL('database:\n  pool_size: 1.5\n')), 'database.pool_size: must be an integer');
    assert.equal(errorOf(MINIMAL('middleware:\n  rate_limit:\n    requests_per_minute: abc\n')), 'middleware.rate_limit.requests_per_minute: must be a number');
    assert.equal(errorOf(MINIMAL('server:\n  workers: many\n')), 'server.workers: must be a number or "auto"');
    // Each worker is a whole process: 4000 written for 4 forked until the machine ran out of memory.
    // The whole request includes its head: a request bound below the header bound was not enforced over HTTP/1.
    assert.equal(errorOf(MINIMAL('server:\n  timeouts: { request: 1s }\n')), 'server.timeouts.request: must be at least server.timeouts.header (the whole request includes its head), or 0: off');
    assert.equal(errorOf(MINIMAL('server:\n  timeouts: { header: 5s, request: 4999ms }\n')), 'server.timeouts.request: must be at least server.timeouts.header (the whole request includes its head), or 0: off');
    for (const workers of [257, 4000]) {
      assert.equal(errorOf(MINIMAL(`server:\n  workers: ${workers}\n`)), 'server.workers: must be at most 256, or "auto" (one per core)');
    }
    assert.equal(errorOf(MINIMAL('server: 8080\n')), 'server: must be a mapping (key: value)');
    assert.equal(errorOf('load_balancing:\n  upstreams: backend1\n'), 'load_balancing.upstreams: must be a list');
    assert.equal(errorOf(MINIMAL('routes:\n  - { name: r, service: default, cors: 5 }\n')), 'routes[0].cors: must be "off" or a mapping (key: value)');
    // A secret written where a string was expected is not echoed back.
    const token = errorOf(MINIMAL('admin:\n  token: [s3cret-admin-token-value]\n'));
    assert.equal(token, 'admin.token: must be a string');
    // A key written with no value (YAML null) is there, just of the wrong type.
    assert.equal(errorOf(MINIMAL('database:\n  pool_size:\n')), 'database.pool_size: must be a number');
  });

  test('"is required" is kept for a key that is really absent', () => {
    assert.equal(errorOf('load_balancing:\n  upstreams:\n    - { address: 127.0.0.1, port: 3000 }\n'), 'load_balancing.upstreams[0].name: is required');
    assert.equal(errorOf('load_balancing:\n  strategy: random\n'), 'load_balancing.upstreams: is required');
  });
});

describe('values start-up would refuse are refused by the schema (check-config, start and reload alike)', () => {
  test('jwt.secret shorter than 32 bytes, with HS256', () => {
    assert.equal(errorOf(MINIMAL(`jwt:\n  secret: "${'x'.repeat(17)}"\n`)), 'jwt.secret: must be at least 32 bytes');
    // Counted in UTF-8 bytes, as the key loader counts them: 11 three-byte characters are 33 bytes.
    assert.equal(parseConfigText(MINIMAL(`jwt:\n  secret: "${'\u20ac'.repeat(11)}"\n`), {}).jwt.secret.length, 11);
    // Empty: generated into the data dir at start-up; with a key pair the secret is not used.
    assert.equal(parseConfigText(MINIMAL('jwt:\n  secret: ""\n'), {}).jwt.secret, '');
    assert.equal(parseConfigText(MINIMAL('jwt:\n  secret: short\n  algorithm: EdDSA\n'), {}).jwt.algorithm, 'EdDSA');
  });

  test('server.trusted_proxies: IPs and CIDRs whose prefix fits the family', () => {
    const ok = parseConfigText(MINIMAL('server:\n  trusted_proxies: ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1", "0.0.0.0/0"]\n'), {});
    assert.equal(ok.server.trusted_proxies.length, 5);
    for (const entry of ['10.0.0.0/99', '10.0.0.0/', '10.0.0.0/8/9', '10.0.0.0/abc', 'fd00::/129', 'proxy.internal', '10.0.0.256', '']) {
      assert.equal(
        errorOf(MINIMAL(`server:\n  trusted_proxies: ["127.0.0.1", "${entry}"]\n`)),
        'server.trusted_proxies[1]: must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8',
        entry,
      );
    }
  });

  test('database.url: empty, postgres:// or postgresql://; the URL is never repeated', () => {
    for (const url of ['postgres://u:p@db.internal:5432/portcullis', 'postgresql://u@db/x?sslmode=require', 'postgres:///x?host=/run/postgresql']) {
      assert.equal(parseConfigText(MINIMAL(`database:\n  url: "${url}"\n`), {}).database.url, url);
    }
    for (const url of ['mysql://user:hunter2-db-password@db/x', 'db.internal:5432', 'postgres://u:p@[bad/x']) {
      const message = errorOf(MINIMAL(`database:\n  url: "${url}"\n`));
      assert.equal(message, 'database.url: must be empty (SQLite in the data dir) or a postgres:// or postgresql:// URL', url);
    }
  });

  test('redis.url: empty, redis:// or rediss:// with an optional database number; the URL is never repeated', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@cache.internal:6380/2', 'redis://user:pw@h/']) {
      assert.equal(parseConfigText(MINIMAL(`redis:\n  url: "${url}"\n`), {}).redis.url, url);
    }
    for (const url of ['foo://user:hunter2-redis-password@h', 'redis://h:6379/cache', 'http://h:6379', 'redis://', '127.0.0.1:6379']) {
      const message = errorOf(MINIMAL(`redis:\n  url: "${url}"\n`));
      assert.match(message, /^redis\.url: must be a redis:\/\/ or rediss:\/\/ URL/, url);
      assert.doesNotMatch(message, /hunter2|cache|6379/, url);
    }
    assert.match(errorOf(MINIMAL('redis:\n  cluster: ["redis://h:7000/x"]\n')), /^redis\.cluster\[0\]: must be a redis:\/\//);
  });

  test('admin.token: visible ASCII without spaces, at least 16 characters, or empty for none', () => {
    for (const token of ['admin-token-for-tests-0123456789abcdef', '0123456789abcdef', 'a.b~c+d/e=_-!#$%&']) {
      assert.equal(parseConfigText(MINIMAL(`admin:\n  token: '${token}'\n`), {}).admin.token, token);
    }
    assert.equal(parseConfigText(MINIMAL('admin:\n  token: ""\n'), {}).admin.token, '');
    const charset = /^admin\.token: must be visible ASCII characters with no spaces/;
    for (const token of [' ', 'token with a space!!', 'tab\there-0123456789', 'caf\u00e9-0123456789abcdef', '0123456789abcdef\u0007']) {
      const message = errorOf(MINIMAL(`admin:\n  token: ${JSON.stringify(token)}\n`));
      assert.match(message, charset, JSON.stringify(token));
      if (token.trim() !== '') assert.ok(!message.includes(token), 'the token is not repeated');
    }
    assert.equal(errorOf(MINIMAL('admin:\n  token: short-token\n')), 'admin.token: must be at least 16 characters (or empty for no token)');
  });
});

describe('files and .env', () => {
  let dir: string;
  let previousCwd: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-load-'));
    previousCwd = process.cwd();
  });
  after(() => {
    process.chdir(previousCwd);
    rmSync(dir, { recursive: true, force: true });
  });

  test('loadDotEnv reads KEY=VALUE lines, strips quotes, skips comments, never overrides', () => {
    const file = join(dir, 'sample.env');
    writeFileSync(file, '# comment\nA=1\nexport B="two words"\nC=\'3\'\n  D = spaced  \nnot a line\nKEEP=from-file\n');
    const env: NodeJS.ProcessEnv = { KEEP: 'from-env' };
    loadDotEnv(file, env);
    assert.deepEqual(env, { KEEP: 'from-env', A: '1', B: 'two words', C: '3', D: 'spaced' });
    loadDotEnv(join(dir, 'missing.env'), env); // no file: nothing happens
  });

  test('loadDotEnv read again (a reload): what the file set follows it, the real environment stays', () => {
    const file = join(dir, 'reread.env');
    writeFileSync(file, 'CHANGED=1\nREMOVED=2\nREAL=from-file\nTWICE=first\nTWICE=second\n');
    const env: NodeJS.ProcessEnv = { REAL: 'from-env' };
    loadDotEnv(file, env);
    assert.deepEqual(env, { REAL: 'from-env', CHANGED: '1', REMOVED: '2', TWICE: 'second' });
    writeFileSync(file, 'CHANGED=10\nREAL=other\nTWICE=first\nTWICE=second\n');
    loadDotEnv(file, env);
    assert.deepEqual(env, { REAL: 'from-env', CHANGED: '10', TWICE: 'second' });
    rmSync(file);
    loadDotEnv(file, env); // the file is gone: so are its variables
    assert.deepEqual(env, { REAL: 'from-env' });
  });

  test('loadConfigFile takes variables from ./.env, the environment winning', () => {
    process.chdir(dir);
    writeFileSync(join(dir, '.env'), 'LOAD_TEST_PORT=4321\nLOAD_TEST_NAME=from-dotenv\n');
    const file = join(dir, 'proxy.yaml');
    writeFileSync(file, MINIMAL('server:\n  listen_port: ${LOAD_TEST_PORT}\n  proxy_by: ${LOAD_TEST_NAME}\n'));
    const config = loadConfigFile(file, { LOAD_TEST_NAME: 'from-env' });
    assert.equal(config.server.listen_port, 4321);
    assert.equal(config.server.proxy_by, 'from-env');
  });

  test('a missing file is a ConfigError naming it', () => {
    const file = join(dir, 'nope.yaml');
    assert.throws(() => loadConfigFile(file, {}), (err: unknown) => err instanceof ConfigError && err.message.includes(file));
  });

  test('resolveConfigPath: flag, then PORTCULLIS_CONFIG, then config/proxy.yaml', () => {
    assert.equal(resolveConfigPath('/x/a.yaml', { PORTCULLIS_CONFIG: '/y/b.yaml' }), '/x/a.yaml');
    assert.equal(resolveConfigPath(undefined, { PORTCULLIS_CONFIG: '/y/b.yaml' }), '/y/b.yaml');
    assert.ok(resolveConfigPath(undefined, {}).endsWith('config/proxy.yaml'));
  });
});

test('server.tls.hsts that a header cannot carry is a config error, not a failure of every TLS response', () => {
  const text = (hsts: string) => `load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\nserver:\n  tls: {cert_file: c.pem, key_file: k.pem, hsts: ${hsts}}\n`;
  const refused = 'server.tls.hsts: has a character a header cannot carry (a control character, or one beyond Latin-1)';
  assert.equal(errorOf(text('"max-age=60\\n"')), refused);
  assert.equal(errorOf(text('"${HSTS}"'), { HSTS: 'max-age=60\r\nX-Injected: 1' }), refused);
  assert.equal(errorOf(text('"max-age=60 \\u20ac"')), refused);
  assert.equal(parseConfigText(text('"max-age=31536000; includeSubDomains"'), {}).server.tls.hsts, 'max-age=31536000; includeSubDomains');
});

test('every duration that becomes a timer is capped at a Node.js timer longest delay; token lifetimes are not', () => {
  const max = 2_147_483_647; // 2^31-1 ms: setTimeout fires a longer delay after 1 ms
  const config = parseConfigText(
    [
      'server:',
      '  timeouts: { header: 30d, request: 30d, idle: 30d, upstream_connect: 30d, upstream_response: 30d, upstream_body: 30d, shutdown_drain: 30d, request_body_chunk: 30d, tunnel_idle: 30d }',
      'redis: { command_timeout: 30d }',
      'jwt: { access_token_expiration: 40d, refresh_token_expiration: 90d, refresh_reuse_grace: 30d }',
      'middleware:',
      '  auth: { session_cleanup_interval: 30d }',
      '  rate_limit: { auth: { per_email: { max_delay: 30d } } }',
      '  plugin_timeout: 30d',
      '  plugin_load_timeout: 30d',
      'services:',
      '  api:',
      '    upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }]',
      '    queue_timeout: 30d',
      '    timeouts: { upstream_connect: 30d, upstream_response: 30d, upstream_body: 30d }',
      '    health_check: { interval: 30d, timeout: 30d, passive_cooldown: 30d }',
      'routes:',
      '  - { name: all, match: { path_prefix: / }, service: api, timeouts: { upstream_response: 30d, upstream_body: 30d, tunnel_idle: 30d } }',
    ].join('\n'),
    {},
  );
  const timers = {
    ...config.server.timeouts,
    command_timeout: config.redis.command_timeout,
    refresh_reuse_grace: config.jwt.refresh_reuse_grace,
    session_cleanup_interval: config.middleware.auth.session_cleanup_interval,
    max_delay: config.middleware.rate_limit.auth.per_email.max_delay,
    plugin_timeout: config.middleware.plugin_timeout,
    plugin_load_timeout: config.middleware.plugin_load_timeout,
    queue_timeout: config.services.api!.queue_timeout,
    service_connect: config.services.api!.timeouts?.upstream_connect,
    service_response: config.services.api!.timeouts?.upstream_response,
    service_body: config.services.api!.timeouts?.upstream_body,
    interval: config.services.api!.health_check.interval,
    probe_timeout: config.services.api!.health_check.timeout,
    passive_cooldown: config.services.api!.health_check.passive_cooldown,
    route_response: config.routes[0]!.timeouts?.upstream_response,
    route_body: config.routes[0]!.timeouts?.upstream_body,
    route_tunnel_idle: config.routes[0]!.timeouts?.tunnel_idle,
  };
  for (const [key, value] of Object.entries(timers)) assert.equal(value, max, key);
  assert.equal(config.jwt.access_token_expiration, 40 * 86_400_000);
  assert.equal(config.jwt.refresh_token_expiration, 90 * 86_400_000);
  // A lifetime has its own cap, 100 years: far beyond, an expiry is no valid Date.
  const huge = parseConfigText('jwt: { refresh_token_expiration: 99999999999d }\nload_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }] }', {});
  assert.equal(huge.jwt.refresh_token_expiration, 100 * 365.25 * 86_400_000);
  assert.ok(!Number.isNaN(new Date(Date.now() + huge.jwt.refresh_token_expiration).getTime()));
  // Below the cap, a value is read as written.
  const below = parseConfigText('server: { timeouts: { idle: 24d } }\nload_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }] }', {});
  assert.equal(below.server.timeouts.idle, 24 * 86_400_000);
});

test('a token bucket that would take more than 100 years to refill is refused, naming its burst_size (every rule)', () => {
  // On Redis such a bucket's expiry was refused, and every request of the rule became a store error.
  const message = /burst_size: with requests_per_minute, refills from empty in more than 100 years/;
  assert.match(errorOf(MINIMAL('middleware:\n  rate_limit:\n    requests_per_minute: 1\n    burst_size: 2000000000000\n')), message);
  assert.match(errorOf(MINIMAL('middleware:\n  rate_limit:\n    policies:\n      slow: { requests_per_minute: 1, burst_size: 60000000 }\n')), /^middleware\.rate_limit\.policies\.slow\.burst_size: /);
  assert.match(errorOf(MINIMAL('middleware:\n  rate_limit:\n    auth:\n      per_email:\n        requests_per_minute: 1\n        burst_size: 900000000\n')), /^middleware\.rate_limit\.auth\.per_email\.burst_size: /);
  assert.match(errorOf(MINIMAL('middleware:\n  rate_limit:\n    auth:\n      per_email_address: { requests_per_minute: 1, burst_size: 900000000 }\n')), /^middleware\.rate_limit\.auth\.per_email_address\.burst_size: /);
  assert.match(errorOf(MINIMAL('middleware:\n  rate_limit:\n    auth:\n      requests_per_minute: 1\n      burst_size: 900000000\n')), /^middleware\.rate_limit\.auth\.burst_size: /);
  // Exactly 100 years is allowed; so is any large burst at a rate that refills it in time.
  assert.doesNotThrow(() => parseConfigText(MINIMAL('middleware:\n  rate_limit:\n    requests_per_minute: 1\n    burst_size: 52560000\n')));
  assert.doesNotThrow(() => parseConfigText(MINIMAL('middleware:\n  rate_limit:\n    requests_per_minute: 1000000000\n    burst_size: 1000000000\n')));
});
