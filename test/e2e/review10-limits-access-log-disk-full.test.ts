// What was wrong: when the access-log file's disk filled up (ENOSPC) or its device failed (EIO), the lines were
// dropped and counted (portcullis_log_lines_dropped_total), and the "Log Lines Dropped" report went to the same file,
// where it failed too: the process log (stdout) said nothing, for as long as the disk stayed full. An operator
// watching the gateway's own log had no way to know the access log had stopped.
// What is right now: one warning on the process log when writes to the access-log file begin to fail (Access Log
// Write Failed, with the error code), and one line when they succeed again (Access Log Write Recovered, with the
// lines dropped meanwhile); requests are served throughout.
// The disk is a 64 KiB tmpfs this test mounts (as root, as CI runs), unmounted in `after`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { smallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const { mountPoint, client, cleanups } = smallDisk('portcullis-review10-full-');

test('the access-log disk full: one warning on the process log per episode, one line when it recovers, requests served', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const gw = await spawnGateway({
    admin: { enabled: true, listen_port: 0 },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    logging: { access_log_file: join(mountPoint, 'access.log') },
  });
  cleanups.push(() => gw.cleanup());
  const filler = join(mountPoint, 'filler');
  writeFileSync(filler, Buffer.alloc(60 * 1024));
  for (let i = 0; i < 200; i++) assert.equal((await client.request(`${gw.url}/full/${i}`)).status, 200);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Write Failed'), 'the warning on stdout', 5_000);
  // More failing writes (flushed every 200 ms) give no second warning.
  for (let i = 0; i < 100; i++) assert.equal((await client.request(`${gw.url}/still/${i}`)).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 600));
  const failed = gw.logs.filter((l) => l.msg === 'Access Log Write Failed');
  assert.equal(failed.length, 1, 'one warning per episode');
  assert.equal(failed[0]!.level, 40);
  assert.equal(failed[0]!.code, 'ENOSPC');
  const metrics = await client.request(`http://127.0.0.1:${gw.adminPort}/metrics`);
  const dropped = /portcullis_log_lines_dropped_total\{destination="access_log_file"\} (\d+)/.exec(metrics.text)?.[1];
  assert.ok(Number(dropped) > 0, 'the dropped lines counted');

  rmSync(filler);
  for (let i = 0; i < 5; i++) assert.equal((await client.request(`${gw.url}/after/${i}`)).status, 200);
  // Once writes succeed again and none has failed for 5 s (access-log-episodes.ts).
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Write Recovered'), 'the recovery on stdout', 10_000);
  const recovered = gw.logs.find((l) => l.msg === 'Access Log Write Recovered')!;
  assert.ok(Number(recovered.dropped) > 0);
  assert.equal(gw.child.exitCode, null);
});
