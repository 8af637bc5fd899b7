// The Redis topology keys: at most one of url, cluster and sentinel, each refused with one config line; none = memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../config/load.js';
import { MemoryKvStore } from './memory.js';
import { openKvStore, usesRedis } from './open.js';

const base = 'load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }] }\n';
const configError = (yaml: string): string => {
  try {
    parseConfigText(base + yaml, {});
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
};

test('two topologies at once are one config error naming them', () => {
  assert.match(configError('redis: { url: "redis://a:6379", cluster: ["redis://b:7000"] }'), /^redis: set only one of url, cluster, sentinel \(got url and cluster\)$/);
  assert.match(
    configError('redis: { cluster: ["redis://b:7000"], sentinel: { name: m, nodes: ["redis://s:26379"] } }'),
    /^redis: set only one of url, cluster, sentinel \(got cluster and sentinel\)$/,
  );
});

test('a sentinel needs its name and nodes; node lists hold redis URLs; a cluster prefix has no braces', () => {
  assert.match(configError('redis: { sentinel: { nodes: ["redis://s:26379"] } }'), /^redis\.sentinel\.name: is required with sentinel\.nodes$/);
  assert.match(configError('redis: { sentinel: { name: m } }'), /^redis\.sentinel\.nodes: needs at least one sentinel URL$/);
  assert.match(configError('redis: { cluster: ["http://b:7000"] }'), /^redis\.cluster\[0\]: must be a redis:\/\/ or rediss:\/\/ URL$/);
  assert.match(configError('redis: { cluster: ["redis://b:7000"], key_prefix: "a{b}:" }'), /^redis\.key_prefix: must not contain/);
});

test('cluster seeds: database 0 only, one scheme, one set of credentials; the messages never show a password', () => {
  assert.match(configError('redis: { cluster: ["redis://b:7000/3"] }'), /^redis\.cluster\[0\]: names a database: a Redis Cluster has database 0 only/);
  assert.match(configError('redis: { cluster: ["redis://b:7000", "redis://c:7001/1"] }'), /^redis\.cluster\[1\]: names a database/);
  assert.match(configError('redis: { cluster: ["rediss://b:7000", "redis://c:7001"] }'), /^redis\.cluster: mixes redis:\/\/ and rediss:\/\/ seeds/);
  for (const seeds of ['"redis://:pw1@b:7000", "redis://:pw2@c:7001"', '"redis://:pw1@b:7000", "redis://c:7001"', '"redis://u:pw1@b:7000", "redis://v:pw1@c:7001"']) {
    const message = configError(`redis: { cluster: [${seeds}] }`);
    assert.match(message, /^redis\.cluster: seeds carry different credentials/, seeds);
    assert.doesNotMatch(message, /pw1|pw2/);
  }
  // What works: /0 or no path, one scheme and the same credentials throughout.
  for (const seeds of ['"redis://b:7000/0", "redis://c:7001/"', '"rediss://:pw@b:7000", "rediss://:pw@c:7001"']) {
    assert.equal(configError(`redis: { cluster: [${seeds}] }`), 'no error', seeds);
  }
});

test('cluster seeds: the same credentials percent-encoded differently, or with and without the default user, are the same credentials', () => {
  for (const seeds of ['"redis://:p%41ss@b:7000", "redis://:pAss@c:7001"', '"redis://:p%2fss@b:7000", "redis://:p%2Fss@c:7001"', '"redis://us%65r:pw@b:7000", "redis://user:pw@c:7001"', '"redis://default:pw@b:7000", "redis://:pw@c:7001"', '"redis://:pw@b:7000", "redis://default:pw@c:7001"']) {
    assert.equal(configError(`redis: { cluster: [${seeds}] }`), 'no error', seeds);
  }
  // Still different once decoded, and never shown.
  const message = configError('redis: { cluster: ["redis://:p%41ss@b:7000", "redis://:pBss@c:7001"] }');
  assert.match(message, /^redis\.cluster: seeds carry different credentials/);
  assert.doesNotMatch(message, /p%41ss|pAss|pBss/);
});

test('a redis URL whose user or password has a malformed percent-escape is a config error, not a URIError at start', () => {
  for (const yaml of ['redis: { url: "redis://:%zz@a:6379" }', 'redis: { cluster: ["redis://:p%@b:7000"] }', 'redis: { sentinel: { name: m, nodes: ["redis://u%g1:pw@s:26379"] } }']) {
    const message = configError(yaml);
    assert.match(message, /^redis\.(url|cluster\[0\]|sentinel\.nodes\[0\]): has a user or password with a malformed percent-escape/, yaml);
    assert.doesNotMatch(message, /%zz|p%|u%g1/, 'the message never repeats the credentials');
  }
  assert.equal(configError('redis: { url: "redis://:p%25ss@a:6379" }'), 'no error', 'an escaped % is fine');
});

test('all empty (the shipped url: "${REDIS_URL:-}" without REDIS_URL) is the memory store', async () => {
  const config = parseConfigText(base + 'redis: { url: "${REDIS_URL:-}" }\n', {});
  assert.equal(usesRedis(config.redis), false);
  const store = await openKvStore(config.redis, () => undefined);
  assert.ok(store instanceof MemoryKvStore);
  await store.close();
  assert.equal(usesRedis(parseConfigText(base + 'redis: { cluster: ["redis://b:7000"] }\n', {}).redis), true);
});
