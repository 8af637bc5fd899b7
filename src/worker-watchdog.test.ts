// The primary's watch over serving workers: who is called stalled, when, and how often.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { WATCHDOG_PING, WATCHDOG_PONG, WATCHDOG_TICK_MS, WorkerWatchdog } from './worker-watchdog.js';

/** A worker as the watchdog sees it: an id, whether it is dead, and the pings it was sent. */
function worker(id: number): Worker & { pings: number; dead: boolean } {
  const w = {
    id,
    pings: 0,
    dead: false,
    isDead: () => w.dead,
    send: (message: { type: string }) => {
      if (message.type === WATCHDOG_PING) w.pings += 1;
      return true;
    },
  };
  return w as unknown as Worker & { pings: number; dead: boolean };
}

test('a worker that answers every ping is never called stalled; a silent one is, once, after the missed ticks', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const stalled: Array<[number, number]> = [];
    const dog = new WorkerWatchdog((w, silentMs) => stalled.push([w.id, silentMs]), undefined, 3);
    const answering = worker(1);
    const silent = worker(2);
    dog.watch(answering);
    dog.watch(silent);
    for (let i = 0; i < 10; i++) {
      mock.timers.tick(WATCHDOG_TICK_MS);
      assert.equal(dog.onMessage(answering, { type: WATCHDOG_PONG }), true);
    }
    assert.equal(answering.pings, 10, 'pinged every tick it answered');
    assert.equal(silent.pings, 1, 'one ping out at a time');
    assert.deepEqual(stalled, [[2, 3 * WATCHDOG_TICK_MS]]);
    dog.stop();
  } finally {
    mock.timers.reset();
  }
});

test('an answer resets the count: a worker late by less than the limit is not stalled', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const stalled: number[] = [];
    const dog = new WorkerWatchdog((w) => stalled.push(w.id), undefined, 3);
    const slow = worker(1);
    dog.watch(slow);
    for (let round = 0; round < 5; round++) {
      mock.timers.tick(3 * WATCHDOG_TICK_MS); // ping, then 2 missed ticks
      dog.onMessage(slow, { type: WATCHDOG_PONG });
    }
    assert.deepEqual(stalled, []);
    dog.stop();
  } finally {
    mock.timers.reset();
  }
});

test('a forgotten or dead worker is never reported; other messages are not the watchdog\'s', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const stalled: number[] = [];
    const dog = new WorkerWatchdog((w) => stalled.push(w.id), undefined, 2);
    const gone = worker(1);
    const dead = worker(2);
    dog.watch(gone);
    dog.watch(dead);
    dog.forget(gone.id);
    dead.dead = true;
    mock.timers.tick(10 * WATCHDOG_TICK_MS);
    assert.deepEqual(stalled, []);
    assert.equal(dog.onMessage(gone, { type: 'portcullis:ready' }), false);
    assert.equal(dog.onMessage(gone, null), false);
    dog.stop();
  } finally {
    mock.timers.reset();
  }
});

// review16 (fix review): a reload whose plugin spun in a worker got it killed mid-round at 10 s, before the round's
// own apply deadline; the round then took every worker for gone and accepted a config none had prepared.
test('a worker the primary awaits an answer from (a reload round) is never called stalled; counted again afterwards', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const stalled: number[] = [];
    let busy = true;
    const dog = new WorkerWatchdog((w) => stalled.push(w.id), () => busy, 3);
    const w = worker(1);
    dog.watch(w);
    mock.timers.tick(20 * WATCHDOG_TICK_MS);
    assert.deepEqual(stalled, [], 'not while busy');
    busy = false;
    mock.timers.tick(4 * WATCHDOG_TICK_MS);
    assert.deepEqual(stalled, [1], 'silent once the round is over');
    dog.stop();
  } finally {
    mock.timers.reset();
  }
});
