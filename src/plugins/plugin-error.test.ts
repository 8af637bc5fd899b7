import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeCause } from '../errors.js';
import { errorClassOf, PluginError } from './plugin-error.js';

test('errorClassOf: the constructor name, never the message, code or name property', () => {
  class PluginBug extends Error {}
  const leaky = Object.assign(new PluginBug('u:hunter2@db'), { code: 'SECRET-hunter2', name: 'hunter2' });
  assert.equal(errorClassOf(leaky), 'PluginBug');
  assert.equal(errorClassOf(new TypeError('x')), 'TypeError');
  assert.equal(errorClassOf('hunter2'), 'string');
  assert.equal(errorClassOf(undefined), 'undefined');
  assert.equal(errorClassOf(null), 'null');
  assert.equal(errorClassOf({ message: 'hunter2' }), 'Object');
  assert.equal(errorClassOf(Object.create(null)), 'Object');
});

test('errorClassOf never throws and never repeats a name that is not an identifier', () => {
  const trap = new Proxy({}, { get: () => { throw new Error('hunter2'); }, getPrototypeOf: () => { throw new Error('hunter2'); } });
  assert.equal(errorClassOf(trap), 'unknown');
  class Named extends Error {}
  Object.defineProperty(Named, 'name', { value: 'u:hunter2@db' });
  assert.equal(errorClassOf(new Named()), 'Error');
  Object.defineProperty(Named, 'name', { get: () => { throw new Error('hunter2'); } });
  assert.equal(errorClassOf(new Named()), 'unknown');
});

test('a PluginError keeps the plugin, the phase and the class; describeCause gives "PluginError <- <class>"', () => {
  const err = new PluginError('db', 'create', Object.assign(new RangeError('u:hunter2@db'), { code: 'SECRET-hunter2' }));
  assert.equal(err.message, 'RangeError thrown by plugin "db" (its message is not shown)');
  assert.deepEqual([err.plugin, err.phase, err.errorClass], ['db', 'create', 'RangeError']);
  assert.equal(err.cause, undefined, 'what was thrown is not kept');
  assert.equal(describeCause(err), 'PluginError <- RangeError');
  assert.ok(!JSON.stringify({ ...err, message: err.message }).includes('hunter2'));
});
