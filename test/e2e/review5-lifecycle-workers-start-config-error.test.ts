// A config error every worker meets at start is printed once, and a multi-worker gateway exits 1 at once (found by
// review). With server.workers > 1, a plugin whose validate() refused its config failed each worker's start, each
// worker printed the error, and the primary restarted them with backoff until it gave up: the same line five times
// over some seconds before exit 1. A worker now hands its config error to the primary, which ends the gateway on
// the first one while no worker has served yet, printed once as a single process prints it. A plugin's create()
// that fails may succeed later (it may reach out to something down now): that worker is still restarted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runCli, upstreams, writeConfig } from '../helpers/gateway.js';
import { closedPort } from '../helpers/backends.js';

/** `portcullis start` on two workers with one plugin, `plugin` being its module's text; exit code and output. */
async function startWithPlugin(plugin: string) {
  const config = writeConfig({
    server: { workers: 2 },
    load_balancing: { upstreams: upstreams([await closedPort()]) },
    plugins: [{ name: 'refuses', module: './refuses.mjs' }],
    middleware: { plugins: ['refuses'] },
  });
  writeFileSync(join(dirname(config), 'refuses.mjs'), plugin);
  try {
    return await runCli(['start', '--config', config], {}, { boundMs: 60_000 });
  } finally {
    rmSync(dirname(config), { recursive: true, force: true });
  }
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

test('two workers, a plugin whose validate() throws: the config error printed once, exit 1', async () => {
  const result = await startWithPlugin(
    `export default { name: 'refuses', validate() { throw new Error('never accepts a config'); }, create() { return {}; } };\n`,
  );
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stderr, 'portcullis: config error: plugins[0].config: never accepts a config\n');
  assert.equal(count(result.stdout, 'Worker Exited'), 0, 'no worker was restarted');
  assert.doesNotMatch(result.stdout, /Gateway Started/);
});

test('two workers, a plugin whose create() throws: still restarted with backoff before the primary gives up', async () => {
  const result = await startWithPlugin(
    `export default { name: 'refuses', create() { throw new Error('the service it needs is down'); } };\n`,
  );
  assert.equal(result.code, 1, result.stderr);
  // Each failed start printed (by the primary) until it gives up after 5 in a row (a sixth may have failed meanwhile).
  assert.ok(count(result.stderr, 'plugins[0]: create() failed') >= 5, result.stderr);
  assert.ok(count(result.stdout, 'Worker Exited') >= 1, 'restarted');
});
