import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeHealth } from './redis-node-health.js';

const a = { host: '10.0.0.1', port: 7000 };
const b = { host: '10.0.0.2', port: 7000 };

test('a failed attempt marks only its node, until that node is ready again', () => {
  const health = new NodeHealth(1_000);
  assert.equal(health.failing('10.0.0.1:7000'), false, 'unknown nodes are not failing (a first connection may wait)');
  assert.equal(health.quiet, true);
  health.failed(a);
  assert.equal(health.quiet, false);
  assert.equal(health.failing('10.0.0.1:7000'), true);
  assert.equal(health.failing('10.0.0.2:7000'), false);
  health.connecting(a);
  assert.equal(health.failing('10.0.0.1:7000'), true, 'accepted again is not answered yet');
  health.ready(a);
  assert.equal(health.failing('10.0.0.1:7000'), false);
  assert.equal(health.quiet, true, 'quiet again once ready');
});

test('an accepted connection left unanswered past the handshake timeout counts as failing', () => {
  let now = 1_000_000;
  const health = new NodeHealth(1_000, () => now);
  health.connecting(b);
  now += 1_000;
  assert.equal(health.failing('10.0.0.2:7000'), false, 'within the timeout');
  health.connecting(b); // a second accept does not restart the clock
  now += 1;
  assert.equal(health.failing('10.0.0.2:7000'), true, 'frozen');
  health.ready(b);
  health.connecting(b);
  assert.equal(health.failing('10.0.0.2:7000'), false, 'a new connection after ready starts a new clock');
});
