// Unit tests of weighted least connections: fewest in-flight per weight wins, ties go by weight, skipping works.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LeastConnections } from './least-conn.js';
import type { Candidate } from './strategy.js';

interface Fake extends Candidate {
  weight: number;
  inflight: number;
  available: boolean;
}

function fakes(spec: ReadonlyArray<[inflight: number, weight: number]>): Fake[] {
  return spec.map(([inflight, weight]) => ({ inflight, weight, available: true }));
}

describe('LeastConnections', () => {
  test('the backend with the fewest in-flight requests wins, wherever the rotation starts', () => {
    const list = fakes([
      [5, 1],
      [1, 1],
      [3, 1],
    ]);
    const lc = new LeastConnections(list.length);
    for (let i = 0; i < 9; i++) assert.equal(lc.pick(list, undefined), 1);
  });

  test('in-flight is compared per unit of weight', () => {
    // 4/4 = 1 beats 2/1 = 2 even though 4 > 2.
    const list = fakes([
      [2, 1],
      [4, 4],
    ]);
    const lc = new LeastConnections(list.length);
    for (let i = 0; i < 4; i++) assert.equal(lc.pick(list, undefined), 1);
  });

  test('weights are honoured as load builds up: a weight-3 backend carries three times as much', () => {
    const list = fakes([
      [0, 3],
      [0, 1],
    ]);
    const lc = new LeastConnections(list.length);
    // Requests that never finish: each pick adds one in-flight to the chosen backend.
    for (let i = 0; i < 40; i++) list[lc.pick(list, undefined)]!.inflight++;
    assert.equal(list[0]!.inflight, 30);
    assert.equal(list[1]!.inflight, 10);
  });

  test('ties rotate instead of always choosing index 0', () => {
    const list = fakes([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    const lc = new LeastConnections(list.length);
    const picks = Array.from({ length: 9 }, () => lc.pick(list, undefined));
    for (const i of [0, 1, 2]) assert.equal(picks.filter((p) => p === i).length, 3, picks.join(','));
  });

  test('unavailable and excluded candidates are skipped even when idle', () => {
    const list = fakes([
      [0, 1],
      [0, 1],
      [7, 1],
    ]);
    list[0]!.available = false;
    const lc = new LeastConnections(list.length);
    for (let i = 0; i < 6; i++) assert.equal(lc.pick(list, list[1]), 2);
  });

  test('returns -1 when no candidate is eligible', () => {
    const list = fakes([[0, 1]]);
    const lc = new LeastConnections(list.length);
    assert.equal(new LeastConnections(0).pick([], undefined), -1);
    assert.equal(lc.pick(list, list[0]), -1);
    list[0]!.available = false;
    assert.equal(lc.pick(list, undefined), -1);
  });

  test('idle backends share by weight: 5:1:1 gives exactly 5:1:1, smoothly, as round robin does', () => {
    const list = fakes([
      [0, 5],
      [0, 1],
      [0, 1],
    ]);
    const lc = new LeastConnections(list.length);
    // Requests that finish before the next arrives: in-flight stays 0, so every pick is a three-way tie.
    const picks = Array.from({ length: 700 }, () => lc.pick(list, undefined));
    assert.deepEqual([0, 1, 2].map((i) => picks.filter((p) => p === i).length), [500, 100, 100]);
    // Smooth: never five of the heavy backend in a row (nginx's sequence is a,a,b,a,c,a,a).
    assert.deepEqual(picks.slice(0, 7), [0, 0, 1, 0, 2, 0, 0]);
  });

  test('among backends tied on in-flight per weight, the weights decide; a less loaded one still wins outright', () => {
    // 2/2 and 1/1 tie (ratio 1) against 3/1: the tie is shared 2:1 by weight, index 2 never chosen.
    const list = fakes([
      [2, 2],
      [1, 1],
      [3, 1],
    ]);
    const lc = new LeastConnections(list.length);
    const picks = Array.from({ length: 30 }, () => lc.pick(list, undefined));
    assert.deepEqual([0, 1, 2].map((i) => picks.filter((p) => p === i).length), [20, 10, 0]);
    list[2]!.inflight = 0;
    assert.equal(lc.pick(list, undefined), 2);
  });

  test('an excluded or unavailable backend takes no part in the tie', () => {
    const list = fakes([
      [0, 5],
      [0, 1],
      [0, 1],
    ]);
    const lc = new LeastConnections(list.length);
    const picks = Array.from({ length: 20 }, () => lc.pick(list, list[0]));
    assert.deepEqual([0, 1, 2].map((i) => picks.filter((p) => p === i).length), [0, 10, 10]);
  });
});
