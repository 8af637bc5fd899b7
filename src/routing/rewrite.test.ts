import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewritePath, hostModeOf } from './rewrite.js';

test('strip_prefix removes the matched prefix on a segment boundary; the bare prefix becomes "/"', () => {
  const strip = { stripPrefix: '/users', addPrefix: undefined };
  assert.equal(rewritePath('/users/1', strip), '/1');
  assert.equal(rewritePath('/users', strip), '/');
  assert.equal(rewritePath('/users/', strip), '/');
  assert.equal(rewritePath('/users/a/b/', strip), '/a/b/');
  // The route matched the prefix in any case, so it is stripped in any case; the rest keeps its own.
  assert.equal(rewritePath('/USERS/Ab', strip), '/Ab');
  assert.equal(rewritePath('/Users', strip), '/');
  assert.equal(rewritePath('/usersx', strip), '/usersx');
  // An escape of a character the prefix holds raw is that character to routes (conditions.ts, pathKey).
  const colon = { stripPrefix: '/v1:beta/x', addPrefix: undefined };
  assert.equal(rewritePath('/v1%3Abeta/X/a%40b', colon), '/a%40b');
  assert.equal(rewritePath('/v1%3Abeta/x', colon), '/');
  assert.equal(rewritePath('/v1%3Abeta', colon), '/v1%3Abeta');
  assert.equal(rewritePath('/v1%3Abeta/xy', colon), '/v1%3Abeta/xy');
  assert.equal(rewritePath('/', colon), '/');
});

test('add_prefix is joined with exactly one slash, with or without its own trailing slash', () => {
  for (const addPrefix of ['/v2', '/v2/']) {
    const both = { stripPrefix: '/users', addPrefix };
    assert.equal(rewritePath('/users/1', both), '/v2/1');
    assert.equal(rewritePath('/users', both), '/v2/');
    assert.equal(rewritePath('/other', { stripPrefix: undefined, addPrefix }), '/v2/other');
  }
  assert.equal(rewritePath('/x', { stripPrefix: undefined, addPrefix: '/' }), '/x');
});

test('no rewrite: the path is unchanged', () => {
  assert.equal(rewritePath('/a/b', { stripPrefix: undefined, addPrefix: undefined }), '/a/b');
});

test('host modes', () => {
  assert.deepEqual(hostModeOf('preserve'), { kind: 'preserve' });
  assert.deepEqual(hostModeOf('upstream'), { kind: 'upstream' });
  assert.deepEqual(hostModeOf('internal.example'), { kind: 'literal', value: 'internal.example' });
});
