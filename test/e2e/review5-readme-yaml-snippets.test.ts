// Every ```yaml snippet of README.md holds as a reader uses it. A Portcullis snippet is a part of the config the README
// calls "the seed's shape": pasted into config/proxy.yaml (merged over it, key by key), the file must pass
// check-config's checks (checkConfig, the function the command runs), with the files the README tells the reader to
// make beside it made as it says (its openssl command, its plugins/hello.ts, both at the checkout's root, where
// `npm start` runs and the testing kit's example finds the plugin). A Docker Compose override must name
// services that exist and set only variables config/proxy.yaml reads. The `portcullis routes --match` transcript is
// what the command prints. docker-compose.yml and the Dockerfile set only variables something reads, and the README's
// list of config/proxy.yaml's variables is that file's. The Redis topologies snippet set url, cluster
// and sentinel at once, which check-config refuses (`redis: set only one of url, cluster, sentinel`), and the plugin
// snippet's `module: ./plugins/hello.ts`, read from config/, named config/plugins/hello.ts: "not found".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { checkConfig } from '../../src/commands/check-config.js';
import { formatMatch, matchReport } from '../../src/commands/routes.js';
import { loadConfigFile } from '../../src/config/load.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const BASE_CONFIG = readFileSync(join(ROOT, 'config/proxy.yaml'), 'utf8');

interface Block {
  readonly lang: string;
  /** The README line of the block's first line of content. */
  readonly line: number;
  readonly text: string;
}

/** The fenced code blocks of a Markdown text (indented fences included, as in list items). */
function fencedBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    blocks.push({ lang: open[2]!, line: i + 2, text: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

type Doc = Record<string, unknown>;
const isMapping = (value: unknown): value is Doc => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `over` pasted into `base`: mappings merged key by key, anything else replaced. */
function merged(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = merged(base[key], value);
  return out;
}

/** A Docker Compose file rather than a Portcullis config: its services have images, environments or dependencies. */
function isComposeFile(doc: Doc): boolean {
  const services = isMapping(doc.services) ? Object.values(doc.services) : [];
  return services.some((s) => isMapping(s) && ['image', 'build', 'environment', 'depends_on'].some((key) => key in s));
}

const blocks = fencedBlocks(README);
const yamlBlocks = blocks.filter((b) => b.lang === 'yaml');
let dir = '';
const startDir = process.cwd();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-readme-'));
  // Relative certificate paths are read from the working directory, as start-up reads them.
  process.chdir(dir);
  // The checkout's package.json says "type": "module", which a .ts plugin there needs; this directory stands for it.
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const plugin = blocks.find((b) => b.lang === 'ts' && b.text.startsWith('// plugins/hello.ts'));
  assert.ok(plugin, 'README has the plugins/hello.ts example');
  mkdirSync(join(dir, 'plugins'));
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'plugins/hello.ts'), plugin.text);
  // The self-signed certificate, made by the README's own command.
  const openssl = blocks.find((b) => b.text.includes('openssl req -x509'));
  assert.ok(openssl, "README has the openssl command of the TLS section");
  execFileSync('bash', ['-e', '-c', openssl.text], { cwd: dir, stdio: 'ignore' });
});

after(() => {
  process.chdir(startDir);
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('the README has YAML snippets of both kinds (the extraction still finds them)', () => {
  assert.ok(yamlBlocks.length >= 5, `found ${yamlBlocks.length} yaml blocks`);
  assert.ok(yamlBlocks.some((b) => isComposeFile(parse(b.text) as Doc)));
  assert.ok(yamlBlocks.some((b) => !isComposeFile(parse(b.text) as Doc)));
});

for (const block of yamlBlocks) {
  const doc = parse(block.text) as Doc;
  if (isComposeFile(doc)) {
    test(`README line ${block.line}: the Docker Compose override names services and variables that exist`, () => {
      const base = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as Doc;
      const baseServices = base.services as Doc;
      const services = doc.services as Doc;
      for (const [name, service] of Object.entries(services)) {
        const s = service as Doc;
        // A service without an image of its own extends docker-compose.yml's.
        if (!('image' in s) && !('build' in s)) assert.ok(name in baseServices, `service ${name} is in docker-compose.yml`);
        for (const dependency of (s.depends_on as string[] | undefined) ?? []) {
          assert.ok(dependency in services || dependency in baseServices, `${name} depends on ${dependency}, which exists`);
        }
      }
      for (const variable of Object.keys(((services.gateway as Doc | undefined)?.environment as Doc | undefined) ?? {})) {
        assert.ok(BASE_CONFIG.includes(`\${${variable}`), `config/proxy.yaml reads ${variable}`);
      }
    });
    continue;
  }
  test(`README line ${block.line}: the snippet in config/proxy.yaml passes check-config`, async () => {
    const config = merged(parse(BASE_CONFIG), doc) as Doc;
    // An absolute log path (/var/log/portcullis/…) is a directory the reader makes; here it is made in the temp dir.
    const logging = config.logging as Doc;
    const logFile = logging.access_log_file;
    if (typeof logFile === 'string' && isAbsolute(logFile)) {
      logging.access_log_file = join(dir, logFile);
      mkdirSync(dirname(join(dir, logFile)), { recursive: true });
    }
    // Where the README's reader pastes it: config/proxy.yaml of a checkout (whose root holds plugins/ and tls/).
    const file = join(dir, 'config', `readme-${block.line}.yaml`);
    writeFileSync(file, stringify(config));
    // No environment: every ${VAR:-default} of config/proxy.yaml takes its default, as on a fresh machine.
    await assert.doesNotReject(checkConfig(file, join(dir, 'data'), {}), `README line ${block.line}:\n${block.text}`);
  });
}

test('the README\'s `portcullis routes --match` transcript is what the command prints', () => {
  const transcripts = blocks.filter((b) => b.text.startsWith('$ portcullis routes '));
  assert.ok(transcripts.length > 0, 'README has a routes --match transcript');
  for (const block of transcripts) {
    const [command, ...output] = block.text.split('\n');
    const args = /--config (\S+) --match "([^"]+)"$/.exec(command!);
    assert.ok(args, `README line ${block.line}: a --config FILE --match "…" command`);
    const report = matchReport(loadConfigFile(join(ROOT, args[1]!), {}), args[2]!, []);
    assert.equal(formatMatch(report), output.join('\n'), `README line ${block.line}`);
  }
});

/** The variables a config's placeholders name (its comment lines left out: they explain `${VAR}`). */
function placeholdersOf(text: string): Set<string> {
  const values = text.split('\n').filter((line) => !line.trimStart().startsWith('#')).join('\n');
  return new Set([...values.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
}
/** What the gateway reads from the environment itself (src/config/env.ts), beside the config's placeholders. */
const GATEWAY_READS = ['PORTCULLIS_CONFIG', 'PORTCULLIS_DATA_DIR', 'LOG_LEVEL'];

test("docker-compose.yml's gateway and the Dockerfile set only variables the gateway or config/proxy.yaml read", () => {
  const read = new Set([...placeholdersOf(BASE_CONFIG), ...GATEWAY_READS]);
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as Doc;
  const gateway = (compose.services as Doc).gateway as Doc;
  for (const variable of Object.keys(gateway.environment as Doc)) assert.ok(read.has(variable), `compose sets ${variable}`);
  // `ENV A=1 \ B=2` in the Dockerfile; NODE_ENV is node's convention for its dependencies, not ours.
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const env = [...dockerfile.matchAll(/^ENV (.*)$/gm)].flatMap((m) => [...m[1]!.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((v) => v[1]!));
  assert.ok(env.includes('PORTCULLIS_CONFIG'), 'the Dockerfile names its config');
  for (const variable of env.filter((v) => v !== 'NODE_ENV')) assert.ok(read.has(variable), `the Dockerfile sets ${variable}`);
});

test("the README's list of the variables config/proxy.yaml uses is that file's placeholders", () => {
  const line = /config\/proxy\.yaml` uses ([^)]*)\)/.exec(README.replace(/\n/g, ' '));
  assert.ok(line, 'README lists them');
  const listed = new Set([...line[1]!.matchAll(/`([A-Z_][A-Z0-9_]*)`/g)].map((m) => m[1]!));
  // `BACKEND1_HOST`…`BACKEND3_HOST` names a range.
  if (listed.has('BACKEND1_HOST') && listed.has('BACKEND3_HOST')) listed.add('BACKEND2_HOST');
  assert.deepEqual([...listed].sort(), [...placeholdersOf(BASE_CONFIG)].sort());
});
