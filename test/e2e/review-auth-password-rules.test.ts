// The password rules judge the password that is hashed: its NFKC form (password.ts normalises before argon2). Judged
// on the text as sent, a password of 4 characters in decomposed form passed the 8-character minimum, and the
// fullwidth spelling of the email passed "not equal to the email" while hashing to the email itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSafeError, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';

/** `text` in fullwidth forms (U+FF01..U+FF5E), which NFKC maps back to ASCII. */
function fullwidth(text: string): string {
  return [...text].map((c) => (c >= '!' && c <= '~' ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c)).join('');
}

describe('password rules on the normalised password', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack();
  });
  after(() => stack.close());

  const registerWith = (email: string, password: string) =>
    stack.client.postJson(`${stack.url}/auth/register`, { email, password });

  test('4 characters written decomposed (e + U+0301, 8 code points) are under the 8-character minimum: 400', async () => {
    const res = await registerWith(uniqueEmail(), 'e\u0301'.repeat(4));
    const body = assertSafeError(res, 400);
    assert.deepEqual(body.details, [{ field: 'password', message: 'must be at least 8 characters' }]);
  });

  test('8 characters written decomposed are 8 characters: 201, and the composed spelling logs in', async () => {
    const email = uniqueEmail();
    assert.equal((await registerWith(email, 'e\u0301'.repeat(8))).status, 201);
    const login = await stack.client.postJson(`${stack.url}/auth/login`, { email, password: '\u00e9'.repeat(8) });
    assert.equal(login.status, 200, login.text);
  });

  test('the email in fullwidth characters is the email: 400 "must not be the email address"', async () => {
    const email = uniqueEmail();
    const res = await registerWith(email, fullwidth(email.toUpperCase()));
    const body = assertSafeError(res, 400);
    assert.deepEqual(body.details, [{ field: 'password', message: 'must not be the email address' }]);
  });
});
