// The three readers of a config (check-config, start, a reload) give one verdict on the same files. Members of the
// class that disagreed: a plugin with a prom-client metric of its own (check-config had no registry to give it), and
// the data dir's generated JWT secret (check-config only asked whether it could be read; start read it, refused one
// too short, and waited for ever on a FIFO), and a JWT key file that is a FIFO (both waited for ever).
// start always runs as a process, and so does check-config on a FIFO (a read that waits for ever must not stop this
// process) and on one input of each test (its exit code and line); its other verdicts come from checkConfig, the
// function the command runs, in this process: a check-config process each was a third of this file's runs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH_ONLY_CONFIG as AUTH, checkConfigVerdict, startVerdict as startConfigVerdict } from '../helpers/config-error.js';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { checkConfig } from '../../src/commands/check-config.js';
import { ConfigError, resolveDataDir } from '../../src/config/load.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const FIXTURES = join(ROOT, 'test/plugins/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review8-readers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: true, listen_host: 127.0.0.1, listen_port: 0}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 1}]
`;

let files = 0;
function configFile(text: string): string {
  const path = join(dir, `config-${++files}.yaml`);
  writeFileSync(path, text);
  return path;
}

const checkVerdict = (path: string, env: NodeJS.ProcessEnv = {}): Promise<string> => checkConfigVerdict(path, env, dir);

/**
 * check-config's verdict as checkVerdict gives it ('ok', or the `portcullis: config error: <reason>` line the command
 * prints for a ConfigError), from checkConfig in this process: the data dir as the command resolves it in `dir`.
 */
async function checkedInProcess(path: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    await checkConfig(path, resolveDataDir({ PORTCULLIS_DATA_DIR: join(dir, 'data'), ...env }));
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return `portcullis: config error: ${err.message}`;
  }
}
const startVerdict = (path: string, env: NodeJS.ProcessEnv = {}): Promise<string> => startConfigVerdict(path, env, dir);

async function reloadVerdict(gw: GatewayProcess, text: string): Promise<string> {
  writeFileSync(`${gw.configFile}.next`, text);
  execFileSync('mv', [`${gw.configFile}.next`, gw.configFile]);
  const res = await fetch(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
  const body = (await res.json()) as { reason?: string };
  return res.status === 200 ? 'ok' : `portcullis: config error: ${body.reason}`;
}

function withPlugin(metric: string): string {
  const reuse = metric === 'own_requests_total';
  return `${BASE}plugins: [{name: m, module: ${join(FIXTURES, 'own-registry-metric.mjs')}, config: {metric: ${metric}, reuse: ${reuse}}}]\n`;
}

test('a plugin with a prom-client metric of its own on api.metrics.registry: one verdict from check-config, start and reload', async () => {
  const path = configFile(BASE);
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: dir });
  after(() => gw.cleanup());
  const refused = 'portcullis: config error: plugins[0]: create() failed: Error thrown by plugin "m" (its message is not shown)';
  const cases: Array<[string, string]> = [
    ['own_requests_total', 'ok'], // a name of its own
    ['portcullis_requests_total', refused], // the gateway's own request counter
    ['portcullis_tls_certificate_expiry_seconds', refused], // registered by start-up whether TLS is on or not
    ['process_cpu_seconds_total', refused], // one of prom-client's default process metrics
  ];
  for (const [index, [metric, expected]] of cases.entries()) {
    const path = configFile(withPlugin(metric));
    const check = index === 1 ? checkVerdict : checkedInProcess;
    assert.equal(await check(path), expected, `check-config, metric ${metric}`);
    assert.equal(await startVerdict(path), expected, `start, metric ${metric}`);
    assert.equal(await reloadVerdict(gw, withPlugin(metric)), expected, `reload, metric ${metric}`);
    assert.equal(await reloadVerdict(gw, BASE), 'ok');
  }
});

/** A data dir whose generated JWT secret file is made by `make` (given its path). */
function dataDirWith(make: (secretFile: string) => void): string {
  const dataDir = mkdtempSync(join(dir, 'data-'));
  make(join(dataDir, 'jwt-secret'));
  return dataDir;
}

test("the data dir's generated JWT secret: check-config reads it as start does, and neither waits on a FIFO", async () => {
  const path = configFile(AUTH);
  const writeSecret = (text: string) => (file: string) => {
    writeFileSync(file, text);
    chmodSync(file, 0o600);
  };
  const cases: Array<[string, (file: string) => void, (file: string) => string]> = [
    ['a secret too short', writeSecret('short\n'), (f) => `jwt.secret: empty, and ${f} holds fewer than 32 bytes`],
    ['an empty file', writeSecret(''), (f) => `jwt.secret: empty, and ${f} holds fewer than 32 bytes`],
    ['blanks only', writeSecret(' \n\n'), (f) => `jwt.secret: empty, and ${f} holds fewer than 32 bytes`],
    ['a FIFO', (f) => execFileSync('mkfifo', ['-m', '600', f]), (f) => `jwt.secret: empty, and ${f} cannot be read (not a regular file)`],
    ['a directory', (f) => mkdirSync(f), (f) => `jwt.secret: empty, and ${f} cannot be read (not a regular file)`],
    ['a usable secret', writeSecret(`${'s'.repeat(40)}\n`), () => 'ok'],
  ];
  for (const [what, make, reason] of cases) {
    const dataDir = dataDirWith(make);
    const env = { PORTCULLIS_DATA_DIR: dataDir };
    const expected = reason(join(dataDir, 'jwt-secret'));
    const verdict = expected === 'ok' ? 'ok' : `portcullis: config error: ${expected}`;
    const check = what === 'a FIFO' || what === 'a secret too short' ? checkVerdict : checkedInProcess;
    assert.equal(await check(path, env), verdict, `check-config, ${what}`);
    assert.equal(await startVerdict(path, env), verdict, `start, ${what}`);
  }
});

test('a JWT key file that is not a regular file is refused by check-config and start alike, never waited on', async () => {
  const keys = mkdtempSync(join(dir, 'keys-'));
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(keys, 'private.pem')], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', join(keys, 'private.pem'), '-pubout', '-out', join(keys, 'public.pem')], { stdio: 'ignore' });
  execFileSync('mkfifo', [join(keys, 'fifo.pem')]);
  const withKeys = (privateFile: string, publicFile: string) =>
    configFile(`${AUTH}jwt: {algorithm: EdDSA, private_key_file: ${privateFile}, public_key_file: ${publicFile}}\n`);
  const cases: Array<[string, string, string]> = [
    [join(keys, 'fifo.pem'), join(keys, 'public.pem'), `jwt.private_key_file: cannot read ${join(keys, 'fifo.pem')} (not a regular file)`],
    [join(keys, 'private.pem'), join(keys, 'fifo.pem'), `jwt.public_key_file: cannot read ${join(keys, 'fifo.pem')} (not a regular file)`],
    [keys, join(keys, 'public.pem'), `jwt.private_key_file: cannot read ${keys} (not a regular file)`],
  ];
  for (const [privateFile, publicFile, reason] of cases) {
    const path = withKeys(privateFile, publicFile);
    const env = { PORTCULLIS_DATA_DIR: mkdtempSync(join(dir, 'data-')) };
    const check = privateFile === keys ? checkedInProcess : checkVerdict;
    assert.equal(await check(path, env), `portcullis: config error: ${reason}`, `check-config, ${privateFile} ${publicFile}`);
    assert.equal(await startVerdict(path, env), `portcullis: config error: ${reason}`, `start, ${privateFile} ${publicFile}`);
  }
  // The usable pair starts.
  const usable = withKeys(join(keys, 'private.pem'), join(keys, 'public.pem'));
  assert.equal(await checkedInProcess(usable, { PORTCULLIS_DATA_DIR: mkdtempSync(join(dir, 'data-')) }), 'ok');
});

function withCounters(...labels: string[][]): string {
  const instances = labels.map((set, i) => `{name: c${i}, module: ${join(FIXTURES, 'labelled-counter.mjs')}, config: {metric: hits_total, labels: [${set.join(', ')}]}}`);
  return `${BASE}plugins: [${instances.join(', ')}]\n`;
}

test("a plugin metric asked for with other labels: a reload says it needs a restart, one config that asks twice is refused by all three", async () => {
  const path = configFile(withCounters(['b']));
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: dir });
  after(() => gw.cleanup());
  // Another label set, another type (the fixture's counter against a gauge of that name is not reachable from a
  // config, so labels and buckets are the members here): start and check-config take it, the running gateway cannot
  // until it restarts, and says so.
  for (const labels of [['a'], ['b', 'a'], []]) {
    const next = withCounters(labels);
    assert.equal(await checkedInProcess(configFile(next)), 'ok', `check-config, labels ${labels.join(',')}`);
    assert.equal(await startVerdict(configFile(next)), 'ok', `start, labels ${labels.join(',')}`);
    assert.equal(
      await reloadVerdict(gw, next),
      'portcullis: config error: plugins[0]: create() failed: needs a restart: metric portcullis_plugin_hits_total keeps the type, labels and buckets it was made with until the gateway restarts (MetricConflictError; or give the metric a new name)',
      `reload, labels ${labels.join(',')}`,
    );
  }
  // The running config keeps serving, and asking alike is fine.
  assert.equal(await reloadVerdict(gw, withCounters(['b'])), 'ok');
  // Two instances of one config asking with other labels: no restart helps, and all three say it alike.
  const twice = withCounters(['b'], ['a']);
  const refused =
    'portcullis: config error: plugins[1]: create() failed: metric portcullis_plugin_hits_total is asked for with other labels or buckets than another instance of this config asked with (MetricConflictError)';
  assert.equal(await checkVerdict(configFile(twice)), refused);
  assert.equal(await startVerdict(configFile(twice)), refused);
  assert.equal(await reloadVerdict(gw, twice), refused);
});

test('a tracing.otlp_endpoint no URL parser takes is refused by check-config as by start, with one config-error line', async () => {
  // Each passed check-config's pattern (http:// and a host) and stopped start with the exporter's own
  // "Error: Configuration: Could not parse user-provided export URL", naming no key.
  const refused = 'portcullis: config error: tracing.otlp_endpoint: must be an http:// or https:// URL';
  const cases: Array<[string, string]> = [
    ['http://127.0.0.1:99999/v1/traces', refused], // a port beyond 65535
    ['http://127.0.0.1:port/v1/traces', refused], // a port that is no number
    ['http://a b/v1/traces', refused], // a blank in the host
    ['http://[::1/v1/traces', refused], // an IPv6 address never closed
    ['https://%zz/v1/traces', refused], // a host no URL can hold
    ['http://[::1]:4318/v1/traces', 'ok'], // nothing listens there: traces are dropped, start goes on
  ];
  for (const [index, [endpoint, expected]] of cases.entries()) {
    const path = configFile(`${BASE}tracing: {otlp_endpoint: '${endpoint}'}\n`);
    const check = index === 0 ? checkVerdict : checkedInProcess;
    assert.equal(await check(path), expected, `check-config, ${endpoint}`);
    assert.equal(await startVerdict(path), expected, `start, ${endpoint}`);
  }
});

test('a %YAML 1.1 directive is refused: it turned merge keys and yes/no/on/off booleans on, which the README refuses', async () => {
  // Each of these loaded before: the merge key gave upstream b the anchor's keys, and `enabled: no` read as false
  // where a YAML 1.2 file gets the string "no" and is told "must be true or false".
  const refused = (file: string) => `portcullis: config error: ${file}: invalid YAML at line 1 (a %YAML 1.1 directive: the file is read as YAML 1.2, remove the directive)`;
  const body = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: no}
logging: {format: json}
load_balancing:
  health_check: {enabled: off}
  upstreams: [&d {name: a, address: 127.0.0.1, port: 1}, {<<: *d, name: b, port: 2}]
`;
  for (const [index, head] of ['%YAML 1.1\n---\n', '%YAML 1.1\n# a comment\n---\n', '%YAML   1.1\n---\n'].entries()) {
    const path = configFile(head + body);
    const check = index === 0 ? checkVerdict : checkedInProcess;
    assert.equal(await check(path), refused(path), `check-config, ${JSON.stringify(head)}`);
    assert.equal(await startVerdict(path), refused(path), `start, ${JSON.stringify(head)}`);
  }
  // %YAML 1.2 is what the file is read as anyway.
  const path = configFile(`%YAML 1.2\n---\n${BASE}`);
  assert.equal(await checkedInProcess(path), 'ok');
});
