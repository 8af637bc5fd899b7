// A plugin's log fields never repeat a key the line already has (found by the plugins review, 2026-12-07: `worker`,
// which a multi-worker gateway's lines carry, was written twice and hid the worker's id).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownFields } from './logger.js';

test("fields named like the line's own keys are renamed plugin_<name>, worker included", () => {
  assert.deepEqual(ownFields({ worker: 'queue-7', service: 'billing', msg: 'm', plugin: 'p', job: 1 }), {
    plugin_worker: 'queue-7',
    plugin_service: 'billing',
    plugin_msg: 'm',
    plugin_plugin: 'p',
    job: 1,
  });
  const plain = { job: 1 };
  assert.equal(ownFields(plain), plain, 'no reserved key: the same object, no copy');
});
