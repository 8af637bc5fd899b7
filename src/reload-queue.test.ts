import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescingQueue } from './reload-queue.js';

test('one run at a time; requests during a run share one more run, which reads the state as it is when it starts', async () => {
  let file = 'v1';
  const read: string[] = [];
  const gates: Array<() => void> = [];
  const queue = new CoalescingQueue(async () => {
    read.push(file);
    await new Promise<void>((resolve) => gates.push(resolve));
    return read.length;
  });
  const first = queue.request();
  file = 'v2';
  const second = queue.request();
  file = 'v3';
  const third = queue.request();
  assert.deepEqual([first.turn, second.turn, third.turn], ['started', 'queued', 'joined']);
  assert.deepEqual(read, ['v1'], 'nothing starts beside the running one');
  gates.shift()!();
  assert.equal(await first.result, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(read, ['v1', 'v3'], 'the next run read the newest state');
  assert.equal(queue.request().turn, 'queued', 'a request after the next run started queues another');
  gates.shift()!();
  assert.deepEqual([await second.result, await third.result], [2, 2]);
  await new Promise((resolve) => setImmediate(resolve));
  gates.shift()!();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(queue.request().turn, 'started', 'idle again');
  gates.shift()!();
});
