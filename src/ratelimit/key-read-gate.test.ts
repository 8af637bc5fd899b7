import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyReadGate } from './key-read-gate.js';

test('reads enter while fewer are in flight than the bucket has tokens; the rest wait for one to end', async () => {
  const gate = new KeyReadGate();
  assert.equal(gate.tryEnter('a', 2), true);
  assert.equal(gate.tryEnter('a', 2), true);
  assert.equal(gate.tryEnter('a', 2), false, 'two tokens, two reads under way');
  assert.equal(gate.tryEnter('b', 1), true, 'another bucket counts apart');

  let woken = 0;
  const waiting = [gate.waitTurn('a').then(() => woken++), gate.waitTurn('a').then(() => woken++)];
  await Promise.resolve();
  assert.equal(woken, 0);
  gate.leave('a');
  await new Promise((r) => setImmediate(r));
  assert.equal(woken, 1, 'one read ended: one waiter looks again, not all of them');
  gate.passOn('a'); // that waiter found the bucket empty: the next one looks
  await Promise.all(waiting);
  assert.equal(woken, 2);
});

test('the entry is dropped once nothing is in flight or waiting, so an idle gate holds nothing', () => {
  const gate = new KeyReadGate();
  assert.equal(gate.tryEnter('a', 3), true);
  assert.equal(gate.tryEnter('b', 3), true);
  assert.equal(gate.size, 2);
  gate.leave('a');
  gate.leave('b');
  assert.equal(gate.size, 0);
  gate.leave('a'); // a stray leave changes nothing
  gate.passOn('a');
  assert.equal(gate.size, 0);
});

test('waiting with nothing in flight resolves at once: a waiter never waits for a read that will not come', async () => {
  const gate = new KeyReadGate();
  await gate.waitTurn('a');
  assert.equal(gate.tryEnter('a', 1), true);
  gate.leave('a');
  await gate.waitTurn('a');
  assert.equal(gate.size, 0);
});
