// Invalid YAML names the line and, for the common mistakes, what is wrong there, in words of ours: never yaml's
// message, which may quote the source (a secret on that line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrorOf as errorOf } from '../../test/helpers/config-error.js';

test('a duplicate key, a second document, a tab, an unclosed quote are named as such', () => {
  assert.equal(errorOf('server:\n  listen_port: 1\n  listen_port: 2\n'), 'config: invalid YAML at line 3 (a key given twice in one mapping)');
  assert.equal(errorOf('server: {}\n---\nserver: {}\n'), 'config: invalid YAML at line 2 (more than one document: a second ---)');
  assert.equal(errorOf('server:\n\tlisten_port: 1\n'), 'config: invalid YAML at line 2 (a tab used as indentation)');
  assert.equal(errorOf('server:\n  proxy_by: "hunter2\n'), 'config: invalid YAML at line 3 (a quote or bracket never closed)');
  const escape = errorOf('jwt:\n  secret: "hunter2\\qsecret"\n');
  assert.equal(escape, 'config: invalid YAML at line 2 (an escape a double-quoted string does not have: use single quotes for backslashes)');
  assert.doesNotMatch(escape, /hunter2/);
});
