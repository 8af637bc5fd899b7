// Durations and sizes at their edges: a positive value is never read as 0, which means "off" or "nothing".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
import { parseConfigText } from './load.js';

const MINIMAL = `load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`;

test('a positive duration below 1 ms is 1 ms, not 0 (which turns a timeout off)', () => {
  assert.equal(parseDuration(0), 0);
  assert.equal(parseDuration('0ms'), 0);
  assert.equal(parseDuration(0.0001), 1);
  assert.equal(parseDuration('0.4ms'), 1);
  assert.equal(parseDuration('0.0000001s'), 1);
  assert.equal(parseDuration('1.4ms'), 1);
  assert.equal(parseDuration('1.5ms'), 2);
  // request_body_chunk: 0 is "no bound"; a tiny bound was read as none.
  const config = parseConfigText(`${MINIMAL}server: {timeouts: {request_body_chunk: 0.0001, header: 0.4ms, request: 0.4ms}}\n`, {});
  assert.equal(config.server.timeouts.request_body_chunk, 1);
  assert.equal(config.server.timeouts.request, 1);
  assert.equal(config.server.timeouts.header, 1);
});

test('a positive size below 1 byte is 1 byte, not 0 (which refuses every body)', () => {
  assert.equal(parseSize(0), 0);
  assert.equal(parseSize('0KB'), 0);
  assert.equal(parseSize('0.0001KB'), 1);
  assert.equal(parseSize('0.4'), 1);
  assert.equal(parseSize('1.5KB'), 1536);
});
