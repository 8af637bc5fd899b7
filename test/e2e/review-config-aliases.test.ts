// YAML aliases that expand too far (a "billion laughs" document), that name no anchor, or that refer to a node holding
// them (a cycle, which only a plugin's free-form config could carry this far) are a one-line config error naming the
// file, from check-config and from a reload alike, never an uncaught ReferenceError or TypeError.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-config-aliases-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]
`;

/** A document within yaml's alias limit by count, whose nine levels of nine aliases would expand to 9^9 nodes. */
const ALIAS_BOMB = `${BASE}x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
${Array.from({ length: 9 }, (_, i) => `x${i + 1}: &x${i + 1} [${Array(9).fill(`*x${i}`).join(', ')}]`).join('\n')}
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

test('an alias bomb is a config error naming the file, not a ReferenceError', async () => {
  const path = file('bomb.yaml', ALIAS_BOMB);
  const result = await checkConfig(path);
  assert.equal(result.stderr, `portcullis: config error: ${path}: YAML aliases expand too far (more than yaml's limit of 100)\n`);
  assert.equal(result.code, 1);
});

test('a reload of an alias bomb is rejected with the reason, and the gateway goes on serving', async () => {
  const path = file('running.yaml', BASE);
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd: dir });
  after(() => gw.cleanup());
  const rejected = () => gw.logs.filter((l) => l.msg === 'Config Rejected');
  writeFileSync(join(dir, 'next.yaml'), ALIAS_BOMB);
  renameSync(join(dir, 'next.yaml'), path);
  gw.signal('SIGHUP');
  await waitFor(() => rejected().length === 1, 'the alias bomb rejected', 15_000);
  assert.equal(rejected()[0]!.reason, `${path}: YAML aliases expand too far (more than yaml's limit of 100)`);
  const health = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(health.status, 200);
  await health.arrayBuffer();
});

test('an alias to no anchor, or one that makes a cycle, is a config error naming the file', async () => {
  const unresolved = file('unresolved.yaml', `${BASE}middleware: {cors: *nope}\n`);
  const result = await checkConfig(unresolved);
  assert.equal(result.stderr, `portcullis: config error: ${unresolved}: the YAML alias *nope names no anchor set before it\n`);
  assert.equal(result.code, 1);
  writeFileSync(join(dir, 'noop.mjs'), 'export default { create() { return {}; } };\n');
  const cycle = file('cycle.yaml', `${BASE}plugins:\n  - {name: p, module: ./noop.mjs, config: &loop {again: *loop}}\n`);
  const cyclic = await checkConfig(cycle);
  assert.equal(cyclic.stderr, `portcullis: config error: ${cycle}: a YAML alias refers to a node that contains it (a cycle)\n`);
  assert.equal(cyclic.code, 1);
});

test('a merge key (<<) says merge keys are not supported, not "<<: unknown key"', async () => {
  const path = file('merge.yaml', `${BASE}services:\n  s:\n    <<: {strategy: random}\n    upstreams: [{name: b, address: 127.0.0.1, port: 3001}]\n`);
  const result = await checkConfig(path);
  assert.equal(
    result.stderr,
    'portcullis: config error: services.s.<<: merge keys (YAML 1.1) are not supported: write the keys out, or alias a whole mapping\n',
  );
  assert.equal(result.code, 1);
});
