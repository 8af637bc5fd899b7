// What was wrong: "Access Log Write Failed" and "Access Log Write Recovered" on the process log followed each write to
// the access-log file that failed after one that succeeded, and each that succeeded after one that failed. A disk
// hovering at full (a log shipper or logrotate freeing space while the gateway fills it) got a pair of lines per
// flap, up to five a second, and neither line had the `event` field every other episode line has
// (Local Resources Exhausted / Recovered).
// What is right now: one warning when the episode begins, one line when writes have succeeded again and none failed
// for 5 s (with the failures, the lines dropped and how long it lasted), both with `event`.
// The disk is a 64 KiB tmpfs this test mounts (as root, as CI runs), unmounted in `after`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { smallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const { mountPoint, client, cleanups } = smallDisk('portcullis-review11-flap-');

/** Fills what is left of the tmpfs (the write stops at ENOSPC and leaves what it wrote). */
function fillDisk(filler: string): void {
  try {
    writeFileSync(filler, Buffer.alloc(128 * 1024));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
}

async function droppedLines(gw: GatewayProcess): Promise<number> {
  const metrics = await client.request(`http://127.0.0.1:${gw.adminPort}/metrics`);
  return Number(/portcullis_log_lines_dropped_total\{destination="access_log_file"\} (\d+)/.exec(metrics.text)?.[1] ?? 0);
}

test('an access-log disk hovering at full: one warning and one recovery for the episode, each with its event', { timeout: 60_000 }, async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const file = join(mountPoint, 'access.log');
  const gw = await spawnGateway({
    admin: { enabled: true, listen_port: 0 },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    logging: { access_log_file: file },
  });
  cleanups.push(() => gw.cleanup());
  const filler = join(mountPoint, 'filler');
  const episodeLines = () => gw.logs.filter((l) => l.msg === 'Access Log Write Failed' || l.msg === 'Access Log Write Recovered');
  // Three flaps, each well within 5 s of the last failure: the disk full (a write fails: lines dropped), then space
  // freed (a write succeeds: the marker request's line is in the file).
  for (let flap = 0; flap < 3; flap++) {
    const before = await droppedLines(gw);
    fillDisk(filler);
    for (let i = 0; i < 50; i++) assert.equal((await client.request(`${gw.url}/full/${flap}/${i}`)).status, 200);
    await waitFor(async () => (await droppedLines(gw)) > before, `flap ${flap}: a failed write`, 5_000, 50);
    rmSync(filler);
    const marker = `/written/${flap}`;
    assert.equal((await client.request(`${gw.url}${marker}`)).status, 200);
    await waitFor(() => readFileSync(file, 'utf8').includes(`"${marker}"`), `flap ${flap}: a write that succeeded`, 5_000, 50);
  }
  // Before the fix: a Failed and a Recovered line per flap, six lines, none with an `event`.
  assert.deepEqual(
    episodeLines().map((l) => [l.msg, l.event]),
    [['Access Log Write Failed', 'Access Log Write Failed']],
    'one warning for the episode, no recovery while it flaps',
  );
  assert.equal(episodeLines()[0]!.code, 'ENOSPC');
  // Writes go on succeeding: the episode ends 5 s after its last failure.
  for (let i = 0; i < 5; i++) assert.equal((await client.request(`${gw.url}/after/${i}`)).status, 200);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Access Log Write Recovered'), 'the recovery on stdout', 10_000, 50);
  const recovered = gw.logs.find((l) => l.msg === 'Access Log Write Recovered')!;
  assert.equal(recovered.event, 'Access Log Write Recovered');
  assert.equal(recovered.level, 30);
  assert.equal(recovered.code, 'ENOSPC');
  assert.equal(recovered.path, file);
  assert.ok(Number(recovered.failures) >= 3, `failures: ${recovered.failures}`);
  assert.ok(Number(recovered.dropped) > 0, `dropped: ${recovered.dropped}`);
  assert.equal(typeof recovered.lasted_ms, 'number');
  assert.equal(episodeLines().length, 2);
  assert.equal(gw.child.exitCode, null);
});
