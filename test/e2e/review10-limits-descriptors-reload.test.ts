// Held, checked: with the gateway's descriptors used up (RLIMIT_NOFILE), a SIGHUP reload and a SIGUSR1 access-log
// reopen, which must open files, refuse cleanly: one line naming the cause's code, the running config and the old
// file kept, the process up. Once the flood is gone, the same reload and reopen succeed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { fillDescriptors, FLOOD_SETTINGS, openDescriptors, spawnLimitedGateway } from '../helpers/descriptor-limit.js';
import { sleep, waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review10-reload-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('descriptors used up: a reload and an access-log reopen refuse cleanly, then succeed once the flood is gone', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const gw = await spawnLimitedGateway(
    {
      ...FLOOD_SETTINGS,
      logging: { access_log_file: join(dir, 'access.log') },
      load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
      routes: [{ name: 'old', match: { path_prefix: '/' }, service: 'default' }],
    },
    NOFILE,
  );
  cleanups.push(() => gw.cleanup());
  writeFileSync(gw.configFile, readFileSync(gw.configFile, 'utf8').replace('name: old', 'name: new'));
  const flood = await fillDescriptors(gw.port, gw.child.pid!, NOFILE);
  cleanups.push(() => flood.release());

  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected'), 'the reload refused', 5_000);
  assert.match(String(gw.logs.find((l) => l.msg === 'Config Rejected')!.reason), /\(EMFILE\)/);
  gw.signal('SIGUSR1');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Reopen Failed'), 'the reopen refused', 5_000);
  assert.equal(gw.logs.find((l) => l.msg === 'Access Log Reopen Failed')!.code, 'EMFILE');
  assert.ok(!gw.logs.some((l) => l.msg === 'Config Reloaded'));
  await sleep(200);
  assert.equal(gw.child.exitCode, null);

  flood.release();
  await waitFor(() => openDescriptors(gw.child.pid!) < NOFILE / 2, 'the flood gone', 10_000);
  const res = await fetch(`${gw.url}/x`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await waitFor(() => readFileSync(join(dir, 'access.log'), 'utf8').includes('"route":"old"'), 'the old route still running', 5_000);
  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Config Reloaded'), 'the reload applied', 5_000);
  gw.signal('SIGUSR1');
  await sleep(300);
  assert.equal(gw.logs.filter((l) => l.msg === 'Access Log Reopen Failed').length, 1);
  const again = await fetch(`${gw.url}/y`);
  assert.equal(again.status, 200);
  await again.arrayBuffer();
  await waitFor(() => readFileSync(join(dir, 'access.log'), 'utf8').includes('"route":"new"'), 'the new route in the reopened file', 5_000);
});
