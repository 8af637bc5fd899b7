// The committed JSON Schema is the generated one, accepts every example config in the repo, refuses unknown keys,
// and its defaults mean what zod's defaults mean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { configJsonSchema, configJsonSchemaText, formatDuration } from './json-schema.js';
import { configSchema } from './schema.js';
import { runCli } from '../../test/helpers/gateway.js';

const ROOT = new URL('../../', import.meta.url);
const COMMITTED = new URL('config/portcullis.schema.json', ROOT);
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(configJsonSchema());

type Yaml = Record<string, unknown>;

function errorsOf(config: unknown): string {
  return validate(config) ? '' : JSON.stringify(validate.errors?.slice(0, 3));
}

/** Deep merge of a README fragment over a full config, so the fragment's keys are checked in place. */
function merge(base: Yaml, over: Yaml): Yaml {
  const out: Yaml = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isObject(prev) && isObject(value) ? merge(prev, value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Yaml {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const proxyYaml = parseYaml(readFileSync(new URL('config/proxy.yaml', ROOT), 'utf8')) as Yaml;

test('config/portcullis.schema.json is up to date (regenerate: node bin/portcullis.js schema > config/portcullis.schema.json)', () => {
  assert.equal(readFileSync(COMMITTED, 'utf8'), configJsonSchemaText());
});

test('`portcullis schema` prints the committed schema', async () => {
  const { code, stdout } = await runCli(['schema']);
  assert.equal(code, 0);
  assert.equal(stdout, readFileSync(COMMITTED, 'utf8'));
});

test('every config file in config/ validates as written, ${VAR} placeholders included', () => {
  const files = readdirSync(new URL('config/', ROOT)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  assert.ok(files.includes('proxy.yaml'));
  for (const file of files) {
    const text = readFileSync(new URL(`config/${file}`, ROOT), 'utf8');
    assert.ok(text.startsWith('# yaml-language-server: $schema=./portcullis.schema.json\n'), `${file} names the schema for editors`);
    assert.equal(errorsOf(parseYaml(text)), '', file);
  }
});

test('every config fragment in the README validates inside config/proxy.yaml', () => {
  const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parseYaml(m[1]!) as Yaml);
  const fragments = blocks.filter((block) => isObject(block) && !('services' in block)); // compose files are not configs
  assert.ok(fragments.length >= 2, 'the README shows config fragments');
  for (const fragment of fragments) assert.equal(errorsOf(merge(proxyYaml, fragment)), '', JSON.stringify(fragment));
});

test('unknown keys, wrong types and out-of-range values are refused', () => {
  assert.match(errorsOf({ ...proxyYaml, tracingg: {} }), /additionalProperties/);
  assert.match(errorsOf(merge(proxyYaml, { server: { listen_prot: 80 } })), /additionalProperties/);
  assert.match(errorsOf(merge(proxyYaml, { tracing: { sample_ratio: 2 } })), /maximum/);
  assert.match(errorsOf(merge(proxyYaml, { load_balancing: { strategy: 'fastest' } })), /enum|anyOf/);
  assert.match(errorsOf(merge(proxyYaml, { server: { timeouts: { header: '10 parsecs' } } })), /pattern/);
  assert.match(errorsOf({ services: { users: {} } }), /required/, 'a service needs upstreams');
  // A placeholder stands in for any scalar: its value is only known at start-up.
  assert.equal(errorsOf(merge(proxyYaml, { tracing: { sample_ratio: '${SAMPLE:-0.1}', trust_incoming: '${TRUST}' } })), '');
});

test('each default in the schema parses to the default zod applies (durations written as "10s", not milliseconds)', () => {
  const minimal = { load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 1 }] } };
  const baseline = configSchema.parse(minimal) as unknown as Yaml;
  let checked = 0;
  const walk = (node: Yaml, path: string[]): void => {
    const props = node.properties as Record<string, Yaml> | undefined;
    if (props) for (const [key, child] of Object.entries(props)) walk(child, [...path, key]);
    // Skipped: upstream lists, and defaults inside optional blocks that have required keys of their own (cors).
    if (node.default === undefined || isObject(node.default) || path.includes('upstreams') || path.includes('cors')) return;
    const input = merge(minimal, path.reduceRight<Yaml>((inner, key) => ({ [key]: inner }), node.default as never) as Yaml);
    const parsed = configSchema.parse(input) as unknown as Yaml;
    const get = (o: Yaml) => path.reduce<unknown>((v, k) => (v as Yaml)[k], o);
    assert.deepEqual(get(parsed), get(baseline), path.join('.'));
    checked++;
  };
  walk(configJsonSchema(), []);
  assert.ok(checked > 50, `checked ${checked} defaults`);
  const header = ((configJsonSchema().properties as Yaml).server as Yaml).properties as Yaml;
  assert.equal(((header.timeouts as Yaml).properties as Record<string, Yaml>).header!.default, '10s');
});

test('formatDuration picks the largest whole unit', () => {
  assert.deepEqual([500, 1000, 90_000, 900_000, 3_600_000, 604_800_000, 0].map(formatDuration), ['500ms', '1s', '90s', '15m', '1h', '7d', '0s']);
});
