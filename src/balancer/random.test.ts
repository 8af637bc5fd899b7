// Unit tests of weighted random with a seeded generator: the spread follows the weights; skipping works.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedRandom } from './random.js';
import type { Candidate } from './strategy.js';

interface Fake extends Candidate {
  weight: number;
  inflight: number;
  available: boolean;
}

/** mulberry32: a small deterministic generator returning numbers in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fakes(weights: readonly number[]): Fake[] {
  return weights.map((weight) => ({ weight, inflight: 0, available: true }));
}

function counts(strategy: WeightedRandom, list: readonly Fake[], n: number, exclude?: Fake): number[] {
  const out = list.map(() => 0);
  for (let i = 0; i < n; i++) {
    const index = strategy.pick(list, exclude);
    assert.notEqual(index, -1);
    out[index]!++;
  }
  return out;
}

describe('WeightedRandom', () => {
  test('30k picks with weights 5,1,1 land within 2 points of 5/7, 1/7, 1/7', () => {
    const list = fakes([5, 1, 1]);
    const n = 30_000;
    const got = counts(new WeightedRandom(seeded(42)), list, n);
    const expected = [5 / 7, 1 / 7, 1 / 7];
    got.forEach((c, i) => assert.ok(Math.abs(c / n - expected[i]!) < 0.02, `backend ${i}: ${c}/${n}`));
  });

  test('equal weights spread evenly over several seeds', () => {
    for (const seed of [1, 7, 1234]) {
      const got = counts(new WeightedRandom(seeded(seed)), fakes([1, 1, 1, 1]), 20_000);
      for (const c of got) assert.ok(Math.abs(c / 20_000 - 0.25) < 0.02, `seed ${seed}: ${got.join(',')}`);
    }
  });

  test('unavailable and excluded candidates are never chosen; the rest keep their ratio', () => {
    const list = fakes([3, 1, 1, 2]);
    list[1]!.available = false;
    const got = counts(new WeightedRandom(seeded(9)), list, 30_000, list[3]);
    assert.equal(got[1], 0);
    assert.equal(got[3], 0);
    assert.ok(Math.abs(got[0]! / 30_000 - 0.75) < 0.02, got.join(','));
  });

  test('the edges of [0, 1) map to the first and last eligible candidates', () => {
    const list = fakes([1, 1, 1]);
    assert.equal(new WeightedRandom(() => 0).pick(list, undefined), 0);
    assert.equal(new WeightedRandom(() => 0.9999999999).pick(list, undefined), 2);
    list[2]!.available = false;
    assert.equal(new WeightedRandom(() => 0.9999999999).pick(list, undefined), 1);
  });

  test('returns -1 when no candidate is eligible', () => {
    const list = fakes([1, 2]);
    const strategy = new WeightedRandom(seeded(3));
    assert.equal(strategy.pick([], undefined), -1);
    list[0]!.available = false;
    assert.equal(strategy.pick(list, list[1]), -1);
  });
});
