// ${VAR} placeholders inside YAML flow collections, as README examples write configs: check-config accepts them and
// `portcullis start` serves with them, typed as in block style; a variable's value stays one value.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { runCli, startProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-placeholders-'));
const client = createClient();
after(async () => {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every section in flow style; `port` is how the upstream's port is written. */
function flowConfig(port: string): string {
  const file = join(dir, `proxy-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `server: {listen_host: 127.0.0.1, listen_port: \${GW_PORT:-0}, proxy_by: \${PROXY_BY}}
admin: {listen_host: \${ADMIN_HOST:-127.0.0.1}, listen_port: 0}
logging: {format: json}
load_balancing:
  health_check: {enabled: \${HEALTH_CHECKS:-false}}
  upstreams: [{name: a, address: \${UP_HOST:-127.0.0.1}, port: ${port}}]
`,
  );
  return file;
}

// A value that would close the mapping and open another, were it pasted into the text before parsing.
const PROXY_BY = 'edge}, admin: {enabled: false';

test('check-config accepts unquoted placeholders in flow collections; a quoted one stays a string', async () => {
  const ok = await runCli(['check-config', '--config', flowConfig('${UP_PORT}')], { UP_PORT: '3000', PROXY_BY });
  assert.equal(ok.stderr, '');
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /^config ok: /);
  const quoted = await runCli(['check-config', '--config', flowConfig('"${UP_PORT}"')], { UP_PORT: '3000', PROXY_BY });
  assert.equal(quoted.code, 1);
  assert.equal(quoted.stderr, 'portcullis: config error: load_balancing.upstreams[0].port: must be a number\n');
  const file = flowConfig('${UP_PORT}');
  const missing = await runCli(['check-config', '--config', file], { PROXY_BY });
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `portcullis: config error: ${file}: environment variable UP_PORT is not set and has no default\n`);
});

test('start serves with placeholders in flow collections, each value in its place', async () => {
  const backend = await startBackend('flow-backend');
  after(() => backend.stop());
  const file = flowConfig('${UP_PORT:-1}');
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', file], file, {
    env: { UP_PORT: String(backend.port), PROXY_BY },
  });
  after(() => gw.cleanup());
  const res = await client.request(`${gw.url}/flow`);
  assert.equal(res.status, 200);
  assert.equal(res.json<{ backend: string }>().backend, 'flow-backend');
  assert.equal(res.headers['x-proxy-by'], PROXY_BY);
  assert.notEqual(gw.adminPort, undefined, 'the value did not turn the admin listener off');
});
