// Unit tests of config loading: the seed's sample, ${VAR} expansion, .env, and "key.path: reason" errors.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText, resolveConfigPath } from './load.js';
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

/** The ConfigError message a text produces (fails the test when it loads). */
function errorOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfigText(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('config unexpectedly loaded');
}

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
    assert.match(errorOf('server:\n  listen_port: 8080\n  listen_host: "a" b\nadmin: {}\n'), /invalid YAML at line 3$/);
    assert.match(errorOf('a: 1\n\tb: 2\n'), /invalid YAML at line 2$/);
    assert.match(errorOf('a: 1\nb: 2\na: 3\n'), /invalid YAML at line 3$/);
    const secret = errorOf('jwt:\n  secret: hunter2-secret-value\n  other: [1, 2\nlogging: {}\n');
    assert.match(secret, /invalid YAML at line 4$/);
    assert.doesNotMatch(secret, /hunter2/);
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
