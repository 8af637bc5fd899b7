// Unit tests of the dashboard's ring buffer: counts, rates, percentiles and slot recycling, on a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentTraffic } from './recent.js';

function clock(start: number) {
  const c = { now: start, tick: (ms: number) => (c.now += ms), read: () => c.now };
  return c;
}

test('summary counts requests and errors of the last minute and reports percentiles within a bucket', () => {
  const c = clock(1_000_000_000_000);
  const recent = new RecentTraffic({ now: c.read });
  c.tick(100_500);
  for (let i = 0; i < 98; i++) recent.record(10, 200);
  recent.record(400, 502);
  recent.record(400, 200);
  const s = recent.summary(60);
  assert.equal(s.requests, 100);
  assert.equal(s.errors, 1);
  assert.ok(s.p50_ms! >= 10 && s.p50_ms! < 12.6, `p50 ${s.p50_ms}`);
  assert.ok(s.p99_ms! >= 400 && s.p99_ms! < 500, `p99 ${s.p99_ms}`);
  // 100 requests over the 59.5 s the window has run.
  assert.ok(Math.abs(s.rate - 100 / 59.5) < 0.01, `rate ${s.rate}`);
});

test('a young buffer divides the rate by its age, not by the whole window', () => {
  const c = clock(1_000_000_000_000);
  const recent = new RecentTraffic({ now: c.read });
  c.tick(2_000);
  for (let i = 0; i < 20; i++) recent.record(1, 200);
  assert.equal(recent.summary(60).rate, 10);
});

test('series has one point per step, oldest first, and drops data older than the ring', () => {
  const c = clock(1_000_000_000_000);
  const recent = new RecentTraffic({ seconds: 20, now: c.read });
  recent.record(5, 200);
  c.tick(1_000);
  for (let i = 0; i < 10; i++) recent.record(5, 200);
  c.tick(1_000);
  const points = recent.series(5);
  assert.equal(points.length, 4);
  assert.equal(points.at(-1)!.rate, 11 / 5);
  assert.equal(points[0]!.p50_ms, null);
  assert.ok(points.every((p, i) => i === 0 || p.t - points[i - 1]!.t === 5_000));
  c.tick(25_000);
  assert.equal(recent.summary(60).requests, 0);
  assert.ok(recent.series(5).every((p) => p.rate === 0));
  // A recycled slot starts from zero.
  recent.record(5, 200);
  assert.equal(recent.summary(1).requests, 1);
});

test('an empty window has no percentiles', () => {
  const s = new RecentTraffic().summary();
  assert.equal(s.requests, 0);
  assert.equal(s.p50_ms, null);
  assert.equal(s.p99_ms, null);
});
