// A stop whose log lines a stdout nobody reads holds (a stalled log shipper), under a wall clock stepped back during
// it (NTP correcting a VM's clock, a restored snapshot). Both bounds on such a stop counted on Date.now(): the line
// writer's 5 s for the rest of its lines (LineWriter #giveUpAt, 8f4e521) and run-gateway's 6 s after which the process
// exits whatever is left (exitOnceStopped, 67f9c6b). A step back of 10 minutes just after SIGTERM held the exit for
// those 10 minutes: a supervisor's stop ran into its SIGKILL. Now both run on the monotonic clock. The gateway runs
// with test/helpers/clock-offset-import.mjs and a clock file (clock-step.ts) that the test steps.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { steppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sleep, waitFor } from '../helpers/wait.js';

const STEP_MS = 10 * 60_000;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Whether something accepts connections on 127.0.0.1:`port`. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('SIGTERM with a stdout nobody reads, then the clock stepped back 10 minutes: the process still exits', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const clock = steppedClock();
  cleanups.push(() => clock.remove());
  const gw = await spawnGateway({ admin: { enabled: false }, load_balancing: { upstreams: upstreams([backend.port]) } }, { env: clock.env });
  cleanups.push(() => gw.cleanup());
  // From here on nobody reads the gateway's stdout. 40 requests with 12 KB paths write about 1 MB of access lines:
  // the pipe and the reader's buffer take some 100 KB, the writer holds the rest.
  gw.child.stdout!.pause();
  const client = createClient({ connections: 4 });
  const pad = 'p'.repeat(12_000);
  for (let i = 0; i < 40; i++) assert.equal((await client.request(`${gw.url}/load/${i}/${pad}`)).status, 200);
  await client.close();

  gw.signal('SIGTERM');
  // The stop has begun once the proxy listener is closed; with no request to drain it reaches the log's flush (and
  // both bounds are set) at once. Then the wall clock goes back 10 minutes.
  await waitFor(async () => !(await accepting(gw.port)), 'the proxy listener to close', 5_000);
  await sleep(500);
  await clock.step(-STEP_MS);
  // The bounds are 5 s (the writer) and 6 s (the process); 15 s leaves a loaded machine room, far below 10 minutes.
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 15_000)));
  const exit = await Promise.race([gw.exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  assert.equal(exit, 0, 'exited with 0 after the stop');
  assert.equal(gw.stderr(), '', 'nothing on stderr');
});
