import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needsShownPath, shownPath } from './shown-path.js';

test('a plain origin-form path is shown as it is, @ included, and needs no work', () => {
  for (const path of ['/', '/users/@me', '/a/b:c@d', '/x%20y']) {
    assert.equal(needsShownPath(path), false, path);
    assert.equal(shownPath(path), path);
  }
});

test('userinfo goes from every spelling of an authority, and a fragment from any target', () => {
  const cases: Array<[string, string]> = [
    ['http://user:s3cret@a.test/x', 'http://a.test/x'],
    ['HTTPS://User:s3cret@A.test:8443', 'HTTPS://A.test:8443'],
    ['ws://:s3cret@a.test/socket', 'ws://a.test/socket'],
    ['http://us@r:s3cret@a.test/x', 'http://a.test/x'],
    ['//user:s3cret@a.test/x', '//a.test/x'],
    ['user:s3cret@a.test/x', 'a.test/x'],
    ['user:s3cret@a.test', 'a.test'],
    ['/cb#access_token=s3cret', '/cb'],
    ['http://a.test/x#s3cret', 'http://a.test/x'],
    ['*', '*'],
    ['a.test:443', 'a.test:443'],
    ['', ''],
  ];
  for (const [target, shown] of cases) {
    assert.equal(needsShownPath(target), true, target);
    assert.equal(shownPath(target), shown, target);
  }
});
