// WorkerRestarts: exponential backoff between restarts, reset by a stable worker; give-up after start-up crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerRestarts } from './worker-restarts.js';

test('crashes in a row back off exponentially up to the cap; a long-lived worker resets the streak', () => {
  const restarts = new WorkerRestarts({ baseDelayMs: 100, maxDelayMs: 1_000, giveUpAfter: 100 });
  restarts.listening();
  const delays = Array.from({ length: 6 }, () => restarts.exited(true, 50)).map((d) => (d.action === 'restart' ? d.delayMs : -1));
  assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000]);
  assert.deepEqual(restarts.exited(true, 60_000), { action: 'restart', delayMs: 100 });
  // A slow start-up that fails is no stable worker: the streak goes on.
  assert.deepEqual(restarts.exited(false, 60_000), { action: 'restart', delayMs: 200 });
});

test('workers that never listen: give up after giveUpAfter crashes in a row; a listening worker forgives them', () => {
  const restarts = new WorkerRestarts({ giveUpAfter: 3 });
  assert.equal(restarts.exited(false, 10).action, 'restart');
  assert.equal(restarts.exited(false, 10).action, 'restart');
  restarts.listening();
  assert.equal(restarts.exited(false, 10).action, 'restart');
  assert.equal(restarts.exited(false, 10).action, 'restart');
  assert.deepEqual(restarts.exited(false, 10), { action: 'give-up', crashes: 3 });
});

test('while another worker serves, replacements failing at start-up are restarted for as long as it takes, never given up on', () => {
  const restarts = new WorkerRestarts({ baseDelayMs: 100, maxDelayMs: 1_000, giveUpAfter: 3 });
  restarts.listening();
  const decisions = Array.from({ length: 8 }, () => restarts.exited(false, 10, true));
  assert.deepEqual(
    decisions.map((d) => (d.action === 'restart' ? [d.delayMs, d.failing ?? false] : d.action)),
    [[100, false], [200, false], [400, true], [800, true], [1_000, true], [1_000, true], [1_000, true], [1_000, true]],
  );
  // The last serving worker gone too: nothing serves, and start-up keeps failing.
  assert.deepEqual(restarts.exited(false, 10, false), { action: 'give-up', crashes: 9 });
});
