import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultClass, faultOrigin } from './process-faults.js';

test('a fault is described by its class and a Node-style code, never by its message or a code of its own words', () => {
  assert.equal(faultClass(new TypeError('secret')), 'TypeError');
  assert.equal(faultClass(Object.assign(new Error('x'), { code: 'ECONNRESET' })), 'Error(ECONNRESET)');
  assert.equal(faultClass(Object.assign(new Error('x'), { code: 'ERR_STREAM_DESTROYED' })), 'Error(ERR_STREAM_DESTROYED)');
  assert.equal(faultClass(Object.assign(new Error('x'), { code: 'SECRET-hunter2' })), 'Error');
  assert.equal(faultClass(Object.assign(new Error('x'), { code: 'Ehunter2' })), 'Error');
  assert.equal(faultClass('a thrown string'), 'string');
  assert.equal(faultClass(null), 'null');
});

test('the origin is the first frame outside Node, relative to the installation, without a URL query', () => {
  const err = new Error('x');
  err.stack = [
    'Error: x',
    '    at listOnTimeout (node:internal/timers:573:17)',
    '    at Timeout._onTimeout (file:///srv/plugins/quota.mjs?v=1712345678:42:11)',
    '    at process.processTimers (node:internal/timers:514:7)',
  ].join('\n');
  assert.equal(faultOrigin(err), '/srv/plugins/quota.mjs:42:11');
  assert.match(String(faultOrigin(new Error('here'))), /^src\/process-faults\.test\.ts:\d+:\d+$/);
  assert.equal(faultOrigin('no stack'), undefined);
});
