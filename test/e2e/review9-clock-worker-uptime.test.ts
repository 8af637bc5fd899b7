// A multi-worker gateway's restart backoff under a wall clock stepped while it runs (NTP correcting a VM's clock, a
// restored snapshot). The primary measured a worker's uptime (uptime_ms in "Worker Exited", and whether the worker
// lived long enough, 30 s, to end the crash streak) as Date.now() minus the Date.now() of its fork:
// - after a step forward of 10 minutes, a worker forked a second before looked stable: its crash reset the streak,
//   so a crash-looping worker's next restart waited 100 ms again instead of the doubled delay;
// - after a step back of 10 minutes, uptime_ms was about -600000, and a worker that had served for hours did not
//   end the streak.
// Now the uptime runs on the monotonic clock. The gateway runs with test/helpers/clock-offset-import.mjs and a
// clock file (clock-step.ts) that the test steps.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { steppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { workerPids } from '../helpers/workers.js';

const STEP_MS = 10 * 60_000;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const started = (gw: GatewayProcess) => gw.logs.filter((l) => l.msg === 'Gateway Started');
const exitedLines = (gw: GatewayProcess) => gw.logs.filter((l) => l.msg === 'Worker Exited');

/** kill -9 worker `pid`; resolves with its "Worker Exited" line once its replacement has logged "Gateway Started". */
async function killAndReplace(gw: GatewayProcess, pid: number): Promise<Record<string, unknown>> {
  const before = started(gw).length;
  const exits = exitedLines(gw).length;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => started(gw).length === before + 1, 'the replacement worker to start', 10_000);
  assert.equal(exitedLines(gw).length, exits + 1, 'one Worker Exited line');
  return exitedLines(gw).at(-1)!;
}

test('a worker uptime (uptime_ms, the crash streak) is monotonic: a step forward or back changes neither', async () => {
  const backend = await startBackend('one');
  cleanups.push(() => backend.stop());
  const clock = steppedClock();
  cleanups.push(() => clock.remove());
  const spawnedAt = performance.now();
  const gw = await spawnGateway(
    { server: { workers: 2 }, admin: { enabled: false }, load_balancing: { upstreams: upstreams([backend.port]) } },
    { env: clock.env },
  );
  cleanups.push(() => gw.cleanup());
  await waitFor(() => started(gw).length === 2, 'both workers to start', 10_000);
  const [first, second] = workerPids(gw.child.pid!);
  assert.ok(first !== undefined && second !== undefined);
  /** Real time since the gateway was spawned: no worker has lived longer. */
  const elapsed = (): number => performance.now() - spawnedAt;

  // A first crash: the streak starts, the replacement waits the base delay.
  const crash = await killAndReplace(gw, first);
  assert.equal(crash.restart_in_ms, 100);
  const replacement = workerPids(gw.child.pid!).find((p) => p !== second);
  assert.ok(replacement !== undefined);

  // Forward 10 minutes: the second worker (up a few seconds) crashes. Not stable: the streak goes on (200 ms).
  await clock.step(STEP_MS);
  const forward = await killAndReplace(gw, second);
  const forwardUptime = Number(forward.uptime_ms);
  assert.ok(forwardUptime >= 0 && forwardUptime <= elapsed(), `uptime_ms ${forwardUptime} after a step forward (real: at most ${Math.round(elapsed())})`);
  assert.equal(forward.restart_in_ms, 200, 'a worker up a few seconds does not end the crash streak');

  // Back 20 minutes (10 behind the real clock): the first replacement, forked before both steps, crashes.
  await clock.step(-STEP_MS);
  const back = await killAndReplace(gw, replacement);
  const backUptime = Number(back.uptime_ms);
  assert.ok(backUptime >= 0 && backUptime <= elapsed(), `uptime_ms ${backUptime} after a step back (real: at most ${Math.round(elapsed())})`);
  assert.equal(back.restart_in_ms, 400);
});
