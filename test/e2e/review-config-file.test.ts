// The config file as check-config, start and reload read it: what is not a config file (a FIFO, a directory, a file
// far larger than any config, bytes that are not UTF-8) is a one-line config error, given at once, and a running
// gateway asked to reload such a file keeps serving on its config.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-config-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]
`;

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** `portcullis check-config --config path` in the test's directory, killed after `boundMs` (then `code` is null). */
function checkConfig(path: string, boundMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['check-config', '--config', path], {}, { cwd: dir, boundMs });
}

test('a FIFO, a directory or another file that is not a regular file is refused at once, never waited on', async () => {
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  const result = await checkConfig(fifo);
  assert.equal(result.stderr, `portcullis: config error: cannot read config file ${fifo} (not a regular file)\n`);
  assert.equal(result.code, 1);
  const directory = await checkConfig(dir);
  assert.equal(directory.stderr, `portcullis: config error: cannot read config file ${dir} (not a regular file)\n`);
});

test('a file larger than 4 MiB is refused before it is parsed', async () => {
  const path = file('huge.yaml', BASE + `padding:\n${'  - 0123456789012345678901234567890123456789\n'.repeat(100_000)}`);
  const result = await checkConfig(path);
  assert.equal(result.stderr, `portcullis: config error: cannot read config file ${path} (larger than 4 MiB)\n`);
  assert.equal(result.code, 1);
});

test('bytes that are not UTF-8 are refused with their line, never read as U+FFFD', async () => {
  // Latin-1 "café" in a header to match: decoded with replacement characters, it was accepted as "caf\uFFFD", a
  // value no request can carry, so the route never matched.
  const latin1 = Buffer.concat([
    Buffer.from(`${BASE}routes:\n  - name: r\n    service: default\n    match: {headers: {x-team: "caf`),
    Buffer.from([0xe9]),
    Buffer.from('"}}\n'),
  ]);
  const path = file('latin1.yaml', latin1);
  const result = await checkConfig(path);
  assert.equal(result.stderr, `portcullis: config error: ${path}: not UTF-8 text (line 10)\n`);
  assert.equal(result.code, 1);
  // A UTF-8 byte order mark is fine.
  const bom = await checkConfig(file('bom.yaml', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(BASE)])));
  assert.equal(bom.stderr, '');
  assert.equal(bom.code, 0);
});

test('a reload of a FIFO is rejected with the reason, and the gateway goes on serving', async () => {
  const path = file('running.yaml', BASE);
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: dir });
  after(() => gw.cleanup());
  const rejected = () => gw.logs.filter((l) => l.msg === 'Config Rejected');
  rmSync(path);
  execFileSync('mkfifo', [path]);
  gw.signal('SIGHUP');
  await waitFor(() => rejected().length === 1, 'the FIFO rejected', 15_000);
  assert.equal(rejected()[0]!.reason, `cannot read config file ${path} (not a regular file)`);
  const health = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(health.status, 200);
  await health.arrayBuffer();
});

test('a tag is refused with its line: never taken for the string it tags, nor for a Buffer, Set or Date', async () => {
  // `!vault path` (a tag of another tool) was the secret "secret/jwt/signing-key/portcullis"; `!!binary` at the root was a
  // Buffer, and its methods were listed as unknown keys.
  for (const [name, text, line] of [
    ['vault', `${BASE}jwt: {secret: !vault secret/jwt/signing-key/portcullis}\n`, 7],
    ['binary', '!!binary aGVsbG8=\n', 1],
    ['set', `${BASE}plugins: !!set {a, b}\n`, 7],
    ['function', `${BASE}tracing: {service_name: !!js/function "function () {}"}\n`, 7],
  ] as const) {
    const path = file(`tag-${name}.yaml`, text);
    const result = await checkConfig(path);
    assert.equal(result.stderr, `portcullis: config error: ${path}: invalid YAML at line ${line} (a tag: tags such as !!binary or !custom are not supported, write the plain value)\n`, name);
    assert.equal(result.code, 1);
  }
});

test('a file that is a scalar or a list says the file must be a mapping', async () => {
  for (const text of ['hello\n', '[1, 2]\n', '42\n']) {
    const result = await checkConfig(file('scalar.yaml', text));
    assert.equal(result.stderr, 'portcullis: config error: the file: must be a mapping (key: value)\n', text);
  }
});

// review16: a config path holding an API key (pasted in the wrong place) was printed back whole, secret included.
test('a config path holding an API key is printed without its secret', async () => {
  const secret = 'ef'.repeat(32);
  const result = await checkConfig(join(dir, `pk_0123456789abcdef_${secret}.yaml`));
  assert.equal(result.code, 1);
  assert.ok(!result.stderr.includes(secret), result.stderr);
  assert.match(result.stderr, /pk_0123456789abcdef_<secret not shown>/);
});
