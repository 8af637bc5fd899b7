// Unhandled rejections are logged at most once per 10 s window (src/process-faults.ts), the others counted into the
// next line. The window was timed on the wall clock: a step back of 10 minutes (NTP correcting a VM's clock, a
// restored snapshot) right after a line silenced every later one for 10 minutes and 10 s, so a plugin's failing
// promises went unreported however long they went on. Now the window runs on the monotonic clock. The gateway's
// wall clock is stepped through test/helpers/clock-offset-import.mjs with a clock file (clock-step.ts); its stray
// plugin (test/plugins/fixtures/stray.mjs) leaves a rejected promise behind on every request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { steppedClock } from '../helpers/clock-step.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { fixture } from '../plugins/helpers.js';

const WINDOW_MS = 10_000;
const lines = (gw: GatewayProcess) => gw.logs.filter((l) => l.msg === 'Unhandled Rejection');

test('a wall clock stepped back 10 minutes does not silence the unhandled-rejection lines', async () => {
  const backend = await startBackend('one');
  const clock = steppedClock();
  let gw: GatewayProcess | undefined;
  try {
    gw = await spawnGateway(
      {
        admin: { enabled: false },
        load_balancing: { upstreams: upstreams([backend.port]) },
        plugins: [{ name: 'stray', module: fixture('stray.mjs'), config: { mode: 'reject' } }],
        middleware: { plugins: ['stray'] },
      },
      { env: clock.env },
    );
    assert.equal((await fetch(`${gw.url}/first`)).status, 200);
    await waitFor(() => lines(gw!).length === 1, 'the first line', 5_000);
    await clock.step(-10 * 60_000);
    assert.equal((await fetch(`${gw.url}/within`)).status, 200);
    // One window later (monotonic), the next rejection is logged, carrying the one held back in between.
    await sleep(WINDOW_MS + 300);
    assert.equal((await fetch(`${gw.url}/later`)).status, 200);
    await waitFor(() => lines(gw!).length === 2, 'the line one window later', 3_000);
    assert.equal(lines(gw)[1]!.suppressed, 1);
  } finally {
    await gw?.cleanup();
    clock.remove();
    await backend.stop();
  }
});
