// The canonical request target: every spelling of a path trick is refused, ordinary targets pass untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequestTarget, isCanonicalTarget, targetProblem } from './path-check.js';

/** Each class of trick, with several spellings; none may pass. */
const REFUSED: Record<string, readonly string[]> = {
  'dot-segments, raw': ['/public/../admin', '/a/./b', '/a/..', '/..', '/.', '/public/..?x=1', '/a/.?'],
  'dot-segments, encoded': ['/public/%2e%2e/admin', '/public/%2E%2E/admin', '/public/.%2e/admin', '/public/%2E./admin', '/public/%2e/x'],
  'dot-segments with parameters': ['/public/..;/admin', '/public/%2e%2e;/admin', '/public/.;/admin', '/public/..;jsessionid=1/admin'],
  'path parameters': ['/admin;x=1', '/public;/admin', '/a;', '/public/x;.css'],
  'encoded separators': ['/a%2fb', '/a%2Fb', '/a%5Cb', '/a%5cb', '/public/..%2Fadmin', '/public%2F..%2Fadmin'],
  backslashes: ['/a\\b', '/public\\..\\admin', '\\admin'],
  'double encoding': ['/public/%252e%252e/admin', '/%25', '/a%252Fb', '/%255C'],
  'encoded semicolon': ['/public/..%3B/admin', '/a%3bb'],
  'encoded unreserved characters': ['/%61dmin', '/adm%69n', '/a%7E', '/a%2D', '/a%5F'],
  'lower-case hex': ['/caf%c3%a9', '/a%2fb', '/x%3f'],
  'malformed percent-encoding': ['/a%', '/a%2', '/a%zz', '/a%G0', '/%%30'],
  'fragments': ['/public/..#', '/public#/admin', '/a?b#c', '/#'],
  'NUL and control bytes': ['/a%00b', '/a%0Ab', '/a%0D%0Ab', '/a%7F', '/a\x00b', '/a\tb', '/a\x7fb', '/a?b\x01'],
  'empty segments': ['//admin', '/public//admin', '/a//', '///'],
  'non-ASCII and unsafe raw bytes': ['/café', '/a b', '/a"b', '/a<b>', '/a{b}', '/a|b', '/a^b', '/a`b', '/a[b]', '/q?a=é'],
  'not origin-form': ['*', 'http://evil.example/admin', 'HTTP://x/', 'evil.example:443', '', 'admin'],
};

for (const [kind, targets] of Object.entries(REFUSED)) {
  test(`refused: ${kind}`, () => {
    for (const target of targets) {
      assert.notEqual(targetProblem(target), undefined, JSON.stringify(target));
      assert.equal(isCanonicalTarget(target), false, JSON.stringify(target));
      const error = checkRequestTarget(target);
      assert.equal(error?.status, 400, JSON.stringify(target));
    }
  });
}

test('ordinary targets are canonical', () => {
  for (const target of [
    '/',
    '/health',
    '/.well-known/jwks.json',
    '/a/b.c',
    '/a/..b',
    '/a/b..',
    '/a/.hidden',
    '/a/...',
    '/x%20y',
    '/caf%C3%A9',
    '/v1/users/',
    '/a/b?x=1&y=%2e%2e/..;\\',
    '/search?q=a[]=1|{}',
    '/~user/-_.!$&\'()*+,=:@',
    '/a%3Fb%23c',
    '/?',
  ]) {
    assert.equal(targetProblem(target), undefined, target);
    assert.equal(checkRequestTarget(target), undefined, target);
  }
});

test('the reason names the rule and never echoes the target; one error object per reason', () => {
  const error = checkRequestTarget('/secret-token-123/..;/admin');
  assert.ok(error);
  assert.doesNotMatch(String(error.details), /secret-token-123/);
  assert.equal(checkRequestTarget('/other/../x'), checkRequestTarget('/x/../y'));
  assert.equal(targetProblem('OPTIONS'), 'request target must be origin-form (/path?query)');
  assert.equal(targetProblem('*'), 'asterisk-form (*) target');
});
