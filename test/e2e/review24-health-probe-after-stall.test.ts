// A health probe answered in time is not failed by a stall of the gateway's own event loop. After a stall (a GC
// pause, a plugin's synchronous work, a loaded host) overdue timers run before the sockets are read, so the probe's
// timeout fired first and failed a probe whose answer lay unread in its socket: with unhealthy_threshold 1 a healthy
// upstream went out of rotation for the gateway's own pause (the browser dashboard test saw its live upstream shown
// unhealthy, twice in fresh-clone CIs). The probe's deadline is now decided after the next look at the sockets. The
// backend runs in a child process, so the stall here is the gateway's alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startInProcess } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Blocks this process's event loop for `ms` (the gateway runs in it). */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy: nothing else runs
  }
}

test('event-loop stalls longer than health_check.timeout do not mark an upstream that answers at once unhealthy', async (t) => {
  const backend = spawn(process.execPath, ['-e', "require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); })"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => backend.kill('SIGKILL'));
  const [chunk] = (await once(backend.stdout!, 'data')) as [Buffer];
  const port = Number(chunk.toString().trim());
  const gw = await startInProcess({
    load_balancing: {
      upstreams: [{ name: 'live', address: '127.0.0.1', port }],
      health_check: { enabled: true, interval: '100ms', timeout: '300ms', healthy_threshold: 1, unhealthy_threshold: 1 },
    },
  });
  t.after(() => gw.close());
  await sleep(500); // probes running
  // Twelve stalls of 700 ms, each landing at another point of the probes' 100 ms cycle: some while a probe's answer
  // is on its way.
  for (let i = 0; i < 12; i++) {
    await sleep(37 + ((i * 53) % 100));
    stall(700);
  }
  await sleep(300);
  const unhealthy = gw.logs.filter((l) => l.msg === 'Upstream Unhealthy');
  assert.deepEqual(unhealthy, [], 'no probe answered in time was failed');
  // Control: the checks still fail a backend that stops answering.
  backend.kill('SIGSTOP');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'a silent backend marked unhealthy', 10_000);
  backend.kill('SIGCONT');
});
