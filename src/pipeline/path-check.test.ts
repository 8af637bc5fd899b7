// Which request paths the gateway refuses as ambiguous, and which ordinary ones it lets through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAmbiguousPath } from './path-check.js';

test('dot-segments, encoded dots and separators, and backslashes are ambiguous', () => {
  for (const path of ['/public/../admin', '/a/./b', '/a/..', '/..', '/public/%2e%2e/admin', '/public/%2E./x', '/a%2fb', '/a%5Cb', '/a\\b']) {
    assert.equal(isAmbiguousPath(path), true, path);
  }
});

test('ordinary paths, dotfiles and encoded characters elsewhere are fine', () => {
  for (const path of ['/', '/health', '/.well-known/jwks.json', '/a/b.c', '/a/..b', '/a/.hidden', '/x%20y', '/file%2Ename', '/v1/users']) {
    assert.equal(isAmbiguousPath(path), false, path);
  }
});
