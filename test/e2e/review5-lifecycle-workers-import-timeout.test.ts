// A plugin import that did not finish within middleware.plugin_load_timeout is no config error every start meets:
// the import reached out to something slow, or the machine was busy starting every worker at once. Since the
// primary ends a multi-worker gateway on the first config error every start would fail on (c5e16f6), such a
// timeout ended start-up at once (exit 1, "giving up"), where the worker used to be restarted and start fine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { startBackend } from '../helpers/backends.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** A plugin whose first two imports (one per starting worker) hang past the timeout; any later one is quick. */
const SLOW_AT_FIRST = `
import { closeSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const dir = dirname(fileURLToPath(import.meta.url));
const claim = (name) => { try { closeSync(openSync(join(dir, name), 'wx')); return true; } catch { return false; } };
if (claim('first-import') || claim('second-import')) await new Promise((resolve) => setTimeout(resolve, 60_000));
export default { name: 'slow', create() { return {}; } };
`;

test('two workers whose plugin import times out at first: restarted, and the gateway starts', async () => {
  const backend = await startBackend('b1');
  const pluginDir = mkdtempSync(join(tmpdir(), 'portcullis-slow-plugin-'));
  const module = join(pluginDir, 'slow.mjs');
  writeFileSync(module, SLOW_AT_FIRST);
  const config = writeConfig({
    server: { workers: 2 },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { plugins: ['slow'], plugin_load_timeout: '500ms' },
    plugins: [{ name: 'slow', module }],
  });
  let gw: GatewayProcess | undefined;
  try {
    gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], config, { timeoutMs: 30_000 });
    assert.equal((await fetch(`${gw.url}/x`)).status, 200);
    assert.match(gw.stderr(), /import did not finish within 500 ms/, 'the timeouts were printed');
  } finally {
    await gw?.cleanup();
    rmSync(pluginDir, { recursive: true, force: true });
    rmSync(dirname(config), { recursive: true, force: true });
    await backend.stop();
  }
});
