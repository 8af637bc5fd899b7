// A reload imports a plugin file whose code changed even when its modification time did not (a deploy with
// `cp -p`, `rsync -t` or a build with fixed timestamps): the module's version is not its mtime alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';

function pluginSource(version: string): string {
  return `export default { name: 'v', create() { return { onResponse(ctx) { ctx.responseHeaders.set('x-code', '${version}'); } }; } };\n`;
}

test('a plugin file rewritten with its old modification time is re-imported by a reload', async () => {
  const backend = await startBackend('echo');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-code-'));
  const file = join(dir, 'v.mjs');
  writeFileSync(file, pluginSource('one'));
  const when = 1_700_000_000; // a whole second: what the rewrite sets back is then exactly what was there
  utimesSync(file, when, when);
  const config = {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: [{ name: 'v', module: file }],
    middleware: { plugins: ['v'] },
  };
  const gw = await startInProcess(config);
  try {
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'one');
    writeFileSync(file, pluginSource('two'));
    utimesSync(file, when, when); // as `cp -p` leaves it
    assert.equal(statSync(file).mtimeMs, when * 1000);
    await gw.gateway.reload(parseConfigObject(config));
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'two');
  } finally {
    await gw.close();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
