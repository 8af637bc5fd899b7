// Unit tests of weighted least connections: fewest in-flight per weight wins, ties rotate, skipping works.
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
    const lc = new LeastConnections();
    for (let i = 0; i < 9; i++) assert.equal(lc.pick(list, undefined), 1);
  });

  test('in-flight is compared per unit of weight', () => {
    // 4/4 = 1 beats 2/1 = 2 even though 4 > 2.
    const list = fakes([
      [2, 1],
      [4, 4],
    ]);
    const lc = new LeastConnections();
    for (let i = 0; i < 4; i++) assert.equal(lc.pick(list, undefined), 1);
  });

  test('weights are honoured as load builds up: a weight-3 backend carries three times as much', () => {
    const list = fakes([
      [0, 3],
      [0, 1],
    ]);
    const lc = new LeastConnections();
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
    const lc = new LeastConnections();
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
    const lc = new LeastConnections();
    for (let i = 0; i < 6; i++) assert.equal(lc.pick(list, list[1]), 2);
  });

  test('returns -1 when no candidate is eligible', () => {
    const list = fakes([[0, 1]]);
    const lc = new LeastConnections();
    assert.equal(lc.pick([], undefined), -1);
    assert.equal(lc.pick(list, list[0]), -1);
    list[0]!.available = false;
    assert.equal(lc.pick(list, undefined), -1);
  });
});
