import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionsCheckingInterval } from './proxy-listener.js';

test('timeouts are checked every quarter of the shorter one, between 250 ms and node\'s 30 s', () => {
  assert.equal(connectionsCheckingInterval(10_000, 300_000), 2_500);
  assert.equal(connectionsCheckingInterval(5_000, 2_000), 500);
  assert.equal(connectionsCheckingInterval(500, 300_000), 250);
  assert.equal(connectionsCheckingInterval(600_000, 0), 30_000);
  assert.equal(connectionsCheckingInterval(0, 0), 30_000, 'both off: node\'s default');
});
