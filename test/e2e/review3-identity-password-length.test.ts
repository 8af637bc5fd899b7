// The password length rules count the password that is hashed (its NFKC form, in characters), as the README says, at
// both ends. The maximum counted the text as sent: 70 accented letters typed decomposed (e + U+0301, as some keyboards
// and macOS file names send them) were refused at register as over 128 characters, and a user registered with the
// composed spelling got 400 at login for the decomposed one, though the two are one password. The minimum counted the
// text as sent too: four "ﬀ" ligatures (eight characters once hashed: "ffffffff") were refused as too short.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSafeError, assertSession, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';

const COMPOSED = '\u00e9';
const DECOMPOSED = 'e\u0301';
const LIGATURE_FF = '\ufb00';

describe('password length counts the hashed form', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack();
  });
  after(() => stack.close());

  const post = (path: string, email: string, password: string) =>
    stack.client.postJson(`${stack.url}/auth/${path}`, { email, password });

  test('70 letters written decomposed (140 code points sent) register, and log in in either spelling', async () => {
    const email = uniqueEmail();
    assertSession(await post('register', email, DECOMPOSED.repeat(70)), 201, email);
    assertSession(await post('login', email, COMPOSED.repeat(70)), 200, email);
    assertSession(await post('login', email, DECOMPOSED.repeat(70)), 200, email);
  });

  test('a password registered composed logs in with its decomposed spelling', async () => {
    const email = uniqueEmail();
    assertSession(await post('register', email, COMPOSED.repeat(100)), 201, email);
    assertSession(await post('login', email, DECOMPOSED.repeat(100)), 200, email);
    // Still a wrong password when it is one.
    assert.equal((await post('login', email, DECOMPOSED.repeat(99))).status, 401);
  });

  test('four "ﬀ" ligatures are eight characters hashed: 201, and "ffffffff" logs in', async () => {
    const email = uniqueEmail();
    assertSession(await post('register', email, LIGATURE_FF.repeat(4)), 201, email);
    assertSession(await post('login', email, 'f'.repeat(8)), 200, email);
  });

  test('over 128 characters hashed is still 400, however it is written', async () => {
    for (const password of ['x'.repeat(129), LIGATURE_FF.repeat(65), DECOMPOSED.repeat(129)]) {
      const body = assertSafeError(await post('register', uniqueEmail(), password), 400, [password]);
      assert.deepEqual(body.details, [{ field: 'password', message: 'must be at most 128 characters' }]);
    }
    const body = assertSafeError(await post('login', uniqueEmail(), 'x'.repeat(129)), 400);
    assert.deepEqual(body.details, [{ field: 'password', message: 'must be at most 128 characters' }]);
  });
});
