// Values check-config accepted although they could never do what they say, now refused with the key and the reason
// (start and reload read the same schema).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-config-values-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
async function checkConfig(extra: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(dir, `proxy-${files++}.yaml`);
  writeFileSync(file, `admin: {enabled: false}\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n${extra}`);
  return runCli(['check-config', '--config', file]);
}

test('a header to match that no request can carry is refused: the route could never be chosen', async () => {
  const route = (value: string) => `routes:\n  - name: r\n    service: default\n    match: {path_prefix: /x, headers: {x-v: ${value}}}\n`;
  // HTTP strips blanks at a value's ends, CR/LF/NUL cannot be sent, and node reads header bytes as Latin-1.
  for (const value of ['" 2"', '"2\\t"', '"a\\nb"', '"a\\u0000b"', '"\\u20ac"']) {
    const result = await checkConfig(route(value));
    assert.match(result.stderr, /^portcullis: config error: routes\[0\]\.match\.headers\.x-v: (?:starts or ends with a blank|has a character)/, value);
    assert.ok(result.stderr.endsWith('so this route could never match\n'), value);
    assert.equal(result.code, 1, value);
  }
  for (const value of ['"2"', '"caf\\u00e9"', '"a b"', '""']) {
    const result = await checkConfig(route(value));
    assert.equal(result.stderr, '', value);
    assert.equal(result.code, 0, value);
  }
});

test('an infinite or NaN number says so, not "must be a number"', async () => {
  for (const [key, value] of [
    ['server.listen_port', '.inf'],
    ['server.timeouts.idle', '1e309'],
    ['server.timeouts.idle', '-.inf'],
    ['database.pool_size', '.nan'],
  ]) {
    const [section, ...rest] = key.split('.');
    const yaml = rest.length === 1 ? `${section}: {${rest[0]}: ${value}}\n` : `${section}: {${rest[0]}: {${rest[1]}: ${value}}}\n`;
    const result = await checkConfig(yaml);
    assert.equal(result.stderr, `portcullis: config error: ${key}: must be a finite number (not .inf, .nan or beyond about 1.8e308)\n`, key);
    assert.equal(result.code, 1, key);
  }
});

test('a health check interval or timeout of 0 is refused: it probed without pause, or failed every probe', async () => {
  // timeout 0 aborted each probe at once: a healthy upstream was logged "Upstream Unhealthy" and taken out.
  const why = {
    timeout: 'must be more than 0 (a probe given no time always fails; to stop probing, set health_check.enabled: false)',
    interval: 'must be more than 0 (0 would probe without pause; to stop probing, set health_check.enabled: false)',
  };
  for (const key of ['timeout', 'interval'] as const) {
    const file = join(dir, `hc-${files++}.yaml`);
    writeFileSync(
      file,
      `admin: {enabled: false}\nservices:\n  s: {health_check: {${key}: 0}, upstreams: [{name: b, address: 127.0.0.1, port: 3000}]}\n`,
    );
    const service = await runCli(['check-config', '--config', file]);
    assert.equal(service.stderr, `portcullis: config error: services.s.health_check.${key}: ${why[key]}\n`, key);
  }
  // load_balancing's own health_check is the same schema.
  const file = join(dir, `hc-${files++}.yaml`);
  writeFileSync(file, 'admin: {enabled: false}\nload_balancing:\n  health_check: {timeout: 0s}\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n');
  const lb = await runCli(['check-config', '--config', file]);
  assert.equal(lb.stderr, `portcullis: config error: load_balancing.health_check.timeout: ${why.timeout}\n`);
});

test('a session cleanup interval or a plugin timeout of 0 is refused: 0 is no "off" for them', async () => {
  // session_cleanup_interval 0 ran the store's cleanup query back to back; plugin_timeout 0 timed out every hook that
  // waited on anything (504), plugin_load_timeout 0 every plugin's import.
  for (const [yaml, key] of [
    ['middleware: {auth: {session_cleanup_interval: 0}}\n', 'middleware.auth.session_cleanup_interval'],
    ['middleware: {auth: {api_key_cache_ttl: 0s}}\n', 'middleware.auth.api_key_cache_ttl'],
    ['middleware: {plugin_timeout: 0ms}\n', 'middleware.plugin_timeout'],
    ['middleware: {plugin_load_timeout: 0}\n', 'middleware.plugin_load_timeout'],
  ]) {
    const result = await checkConfig(yaml);
    assert.equal(result.stderr, `portcullis: config error: ${key}: must be more than 0\n`, key);
    assert.equal(result.code, 1);
  }
});

test('an API-key cache TTL beyond 5 minutes is refused: a revoked key stays in the revocation store only 10', async () => {
  const result = await checkConfig('middleware: {auth: {api_key_cache_ttl: 301s}}\n');
  assert.equal(result.stderr, 'portcullis: config error: middleware.auth.api_key_cache_ttl: must be at most 5m\n');
  assert.equal(result.code, 1);
  assert.equal((await checkConfig('middleware: {auth: {api_key_cache_ttl: 5m}}\n')).code, 0);
});

test('an upstream address that is no IP address or host name is refused, not ERR_INVALID_URL at start', async () => {
  // check-config said "config ok"; start failed with "TypeError: ERR_INVALID_URL Invalid URL" and no key.
  const upstream = (address: string) => `services:\n  s: {upstreams: [{name: b, address: "${address}", port: 3000}]}\n`;
  for (const [address, why] of [
    ['http://10.0.0.1', 'must be an IP address or a host name, without a scheme (TLS is tls.enabled)'],
    ['10.0.0.1:3000', 'must be an IP address or a host name, without a port (that is the port key)'],
    ['[::1]', 'an IPv6 address is written without brackets here (::1)'],
    ['a b', 'must be an IP address or a host name'],
  ]) {
    const result = await checkConfig(upstream(address));
    assert.equal(result.stderr, `portcullis: config error: services.s.upstreams[0].address: ${why}\n`, address);
    assert.equal(result.code, 1);
  }
  for (const address of ['10.0.0.1', '::1', 'backend_1', 'api.internal', 'localhost']) {
    const result = await checkConfig(upstream(address));
    assert.equal(result.stderr, '', address);
  }
});
