// What was wrong: server.max_connections (1000 by default) was taken as given whatever the process's descriptor limit
// (RLIMIT_NOFILE). Under a limit of 256 the gateway started without a word, and the bound it advertised could never
// be reached: past some 100 clients (each with its upstream connection) accept() and connect() met EMFILE.
// What is right now: at start and at each reload, a warning (Descriptor Limit Low) when 2 × max_connections plus the
// process's own descriptors exceed the limit, with both numbers, as nginx warns of worker_connections over the limit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { spawnLimitedGateway } from '../helpers/descriptor-limit.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const NOFILE = 256;

test('max_connections above what RLIMIT_NOFILE allows is warned of at start and at a reload that raises it', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const config = (max: number) => ({
    admin: { enabled: false },
    server: { max_connections: max },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
  });
  const low = (gw: { logs: Array<Record<string, unknown>> }) => gw.logs.filter((l) => l.msg === 'Descriptor Limit Low');

  const over = await spawnLimitedGateway(config(1000), NOFILE);
  cleanups.push(() => over.cleanup());
  await waitFor(() => low(over).length > 0, 'the warning', 5_000);
  const warning = low(over)[0]!;
  assert.equal(warning.level, 40);
  assert.equal(warning.max_connections, 1000);
  assert.equal(warning.rlimit_nofile, NOFILE);
  assert.equal(warning.descriptors_needed, 2064);

  const within = await spawnLimitedGateway(config(50), NOFILE);
  cleanups.push(() => within.cleanup());
  const text = readFileSync(within.configFile, 'utf8');
  assert.match(text, /max_connections: 50/);
  writeFileSync(within.configFile, text.replace('max_connections: 50', 'max_connections: 500'));
  within.signal('SIGHUP');
  await waitFor(() => within.logs.some((l) => l.msg === 'Config Reloaded'), 'the reload', 5_000);
  const warned = low(within);
  assert.equal(warned.length, 1, 'none at start (50 fit), one at the reload to 500');
  assert.equal(warned[0]!.max_connections, 500);
  assert.ok(within.logs.indexOf(warned[0]!) > within.logs.findIndex((l) => l.msg === 'Gateway Started'));
});
