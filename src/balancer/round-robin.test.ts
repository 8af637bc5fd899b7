// Unit tests of smooth weighted round robin: nginx's exact sequence, exact counts per window, skipping.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobin } from './round-robin.js';
import type { Candidate } from './strategy.js';

interface Fake extends Candidate {
  name: string;
  weight: number;
  inflight: number;
  available: boolean;
}

function fakes(weights: readonly number[]): Fake[] {
  return weights.map((weight, i) => ({ name: String.fromCharCode(97 + i), weight, inflight: 0, available: true }));
}

function sequence(rr: RoundRobin, list: readonly Fake[], n: number, exclude?: Fake): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const index = rr.pick(list, exclude);
    out.push(index === -1 ? '-' : list[index]!.name);
  }
  return out;
}

describe('RoundRobin (smooth weighted)', () => {
  test('weights 5,1,1 give nginx sequence a,a,b,a,c,a,a', () => {
    const list = fakes([5, 1, 1]);
    const rr = new RoundRobin(list.length);
    assert.deepEqual(sequence(rr, list, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    // The cycle repeats exactly.
    assert.deepEqual(sequence(rr, list, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  test('every window of sum(weights) picks holds each backend exactly weight times', () => {
    const weights = [5, 3, 2, 1];
    const list = fakes(weights);
    const rr = new RoundRobin(list.length);
    const total = weights.reduce((a, b) => a + b, 0);
    for (let window = 0; window < 100; window++) {
      const counts = new Map<string, number>();
      for (const name of sequence(rr, list, total)) counts.set(name, (counts.get(name) ?? 0) + 1);
      assert.deepEqual(
        list.map((c) => counts.get(c.name) ?? 0),
        weights,
        `window ${window}`,
      );
    }
  });

  test('equal weights rotate in order', () => {
    const list = fakes([1, 1, 1]);
    const rr = new RoundRobin(list.length);
    assert.deepEqual(sequence(rr, list, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('unavailable candidates are skipped; the others keep their ratio', () => {
    const list = fakes([2, 1, 1]);
    list[0]!.available = false;
    const rr = new RoundRobin(list.length);
    const picks = sequence(rr, list, 20);
    assert.ok(!picks.includes('a'));
    assert.equal(picks.filter((p) => p === 'b').length, 10);
    assert.equal(picks.filter((p) => p === 'c').length, 10);
  });

  test('the excluded candidate (a retry) is skipped', () => {
    const list = fakes([5, 1, 1]);
    const rr = new RoundRobin(list.length);
    const picks = sequence(rr, list, 30, list[0]);
    assert.ok(!picks.includes('a'));
    assert.equal(picks.filter((p) => p === 'b').length, 15);
  });

  test('returns -1 when no candidate is eligible', () => {
    const list = fakes([1, 1]);
    const rr = new RoundRobin(list.length);
    assert.equal(rr.pick([], undefined), -1);
    list[0]!.available = false;
    assert.equal(rr.pick(list, list[1]), -1);
    list[1]!.available = false;
    assert.equal(rr.pick(list, undefined), -1);
  });

  test('a backend coming back is folded in without starving the others', () => {
    const list = fakes([1, 1, 1]);
    const rr = new RoundRobin(list.length);
    list[2]!.available = false;
    sequence(rr, list, 10);
    list[2]!.available = true;
    const picks = sequence(rr, list, 30);
    for (const name of ['a', 'b', 'c']) assert.equal(picks.filter((p) => p === name).length, 10, name);
  });
});
