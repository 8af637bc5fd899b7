// Port 0 in a URL the gateway connects to: redis://127.0.0.1:0 passed check-config and start, the client was refused
// at every connect, and each rate-limited request was a 503 (on_store_error: deny; "KV Store Unavailable ...
// ECONNREFUSED"). Members: redis.url, a redis.cluster seed, a sentinel node, tracing.otlp_endpoint (every export
// failed, the spans dropped). Now a config error naming the key, from check-config and start alike (database.url's
// port 0 is review9-config-database-url's).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigVerdict, configErrorOf, startVerdict } from '../helpers/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review9-port-zero-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 1}]
`;
const REDIS = "names port 0, where no server listens (write the server's port, or none for 6379)";

test('port 0 in redis.url: check-config and start refuse it alike, naming the key', async () => {
  const path = join(dir, 'redis.yaml');
  writeFileSync(path, `${BASE}redis: {url: 'redis://127.0.0.1:0', key_prefix: 'review9-port-zero:'}\nmiddleware: {rate_limit: {enabled: true, on_store_error: deny}}\n`);
  const refused = `portcullis: config error: redis.url: ${REDIS}`;
  assert.equal(await checkConfigVerdict(path, {}, dir), refused);
  assert.equal(await startVerdict(path, {}, dir), refused);
});

test('port 0 in a cluster seed, a sentinel node or the OTLP endpoint is refused too; a port of the URL default is not', () => {
  const cases: Array<[string, string]> = [
    ["redis: {cluster: ['redis://127.0.0.1:7000', 'redis://127.0.0.1:0']}", `redis.cluster[1]: ${REDIS}`],
    ["redis: {sentinel: {name: m, nodes: ['redis://127.0.0.1:0']}}", `redis.sentinel.nodes[0]: ${REDIS}`],
    ["tracing: {otlp_endpoint: 'http://127.0.0.1:0/v1/traces'}", "tracing.otlp_endpoint: names port 0, where no collector listens (write the collector's port, or none for the scheme's)"],
  ];
  for (const [text, reason] of cases) assert.equal(configErrorOf(`${BASE}${text}\n`), reason, text);
  for (const text of ["redis: {url: 'redis://127.0.0.1'}", "redis: {url: 'rediss://127.0.0.1:6380/2'}", "tracing: {otlp_endpoint: 'https://collector:443/v1/traces'}"]) {
    assert.throws(() => configErrorOf(`${BASE}${text}\n`), /config unexpectedly loaded/, text);
  }
});
