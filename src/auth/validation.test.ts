// Body schemas: email normalisation and limits, password rules, and details that never echo input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuthSchemas, toFieldIssues } from './validation.js';

const schemas = createAuthSchemas({ password_min_length: 8, password_require_mixed: false });

function issues(schema: keyof typeof schemas, body: unknown): { field: string; message: string }[] {
  const result = schemas[schema].safeParse(body);
  assert.equal(result.success, false, `expected ${JSON.stringify(body)} to be refused`);
  return toFieldIssues(result.error!);
}

describe('register schema', () => {
  test('accepts the documented example and normalises the email', () => {
    assert.deepEqual(schemas.register.parse({ email: '  User@Example.COM ', password: 'SecurePass123!' }), {
      email: 'user@example.com',
      password: 'SecurePass123!',
    });
  });

  test('no composition rules by default', () => {
    assert.ok(schemas.register.safeParse({ email: 'a@example.com', password: 'aaaaaaaa' }).success);
  });

  test('an unpaired UTF-16 surrogate in the password or the email is refused, with a detail saying so', () => {
    for (const password of ['Secure\ud800Pass123!', 'Secure\udfffPass123!', '\udbff\udbffPass123!']) {
      for (const schema of ['register', 'login'] as const) {
        const found = issues(schema, { email: 'a@example.com', password });
        assert.deepEqual(found.map((i) => i.field), ['password']);
        assert.match(found[0]!.message, /well-formed Unicode/);
      }
    }
    assert.match(issues('register', { email: 'a\ud800@example.com', password: 'SecurePass123!' })[0]!.message, /well-formed Unicode/);
    // A surrogate pair is one character (an emoji), and U+FFFD is a character like any other.
    assert.ok(schemas.register.safeParse({ email: 'a@example.com', password: 'Secure\u{1f600}Pass' }).success);
    assert.ok(schemas.login.safeParse({ email: 'a@example.com', password: 'Secure\ufffdPass' }).success);
  });

  test('email must be a valid address of at most 254 characters', () => {
    for (const email of ['', 'plain', 'a@b', '@example.com', 'a b@example.com', 'a@exa mple.com', 'a\r\n@example.com', 'a@example.com>']) {
      assert.deepEqual(issues('register', { email, password: 'SecurePass123!' }).map((i) => i.field), ['email'], email);
    }
    const long = `${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(10)}.com`;
    assert.ok(long.length > 254);
    assert.deepEqual(issues('register', { email: long, password: 'SecurePass123!' }), [
      { field: 'email', message: 'must be at most 254 characters' },
    ]);
  });

  test('password length bounds follow the policy and 128', () => {
    assert.deepEqual(issues('register', { email: 'a@example.com', password: 'short' }), [
      { field: 'password', message: 'must be at least 8 characters' },
    ]);
    assert.deepEqual(issues('register', { email: 'a@example.com', password: 'x'.repeat(129) }), [
      { field: 'password', message: 'must be at most 128 characters' },
    ]);
    assert.ok(schemas.register.safeParse({ email: 'a@example.com', password: 'x'.repeat(128) }).success);
    const strict = createAuthSchemas({ password_min_length: 12, password_require_mixed: false });
    assert.equal(strict.register.safeParse({ email: 'a@example.com', password: 'elevenchars' }).success, false);
  });

  test('the password may not be the email', () => {
    assert.deepEqual(issues('register', { email: 'Long.Name@Example.com', password: 'long.name@example.COM' }), [
      { field: 'password', message: 'must not be the email address' },
    ]);
  });

  test('password_require_mixed adds the composition rule', () => {
    const mixed = createAuthSchemas({ password_min_length: 8, password_require_mixed: true });
    assert.equal(mixed.register.safeParse({ email: 'a@example.com', password: 'alllowercase1' }).success, false);
    assert.ok(mixed.register.safeParse({ email: 'a@example.com', password: 'SecurePass123!' }).success);
  });

  test('password_require_mixed judges the password as hashed (NFKC), in any script', () => {
    const mixed = createAuthSchemas({ password_min_length: 8, password_require_mixed: true });
    // Fullwidth capitals are the ASCII ones once normalised: the password that logs in as "PASSword123".
    assert.ok(mixed.register.safeParse({ email: 'a@example.com', password: '\uff30\uff21\uff33\uff33word123' }).success);
    assert.ok(mixed.register.safeParse({ email: 'a@example.com', password: '\u041f\u0430\u0440\u043e\u043b\u044c12345' }).success, 'Cyrillic letters');
    for (const password of ['\u043f\u0430\u0440\u043e\u043b\u044c12345', 'PASSWORD123', 'Passwordxyz']) {
      assert.equal(mixed.register.safeParse({ email: 'a@example.com', password }).success, false, password);
    }
  });

  test('missing fields, wrong types and non-objects are named without echoing the input', () => {
    assert.deepEqual(issues('register', {}), [
      { field: 'email', message: 'is required' },
      { field: 'password', message: 'is required' },
    ]);
    assert.deepEqual(issues('register', { email: 5, password: ['SecretValue1'] }), [
      { field: 'email', message: 'must be a string' },
      { field: 'password', message: 'must be a string' },
    ]);
    for (const body of [null, [], 'text', 3]) {
      assert.deepEqual(issues('register', body), [{ field: 'body', message: 'must be a JSON object' }]);
    }
    const leaked = JSON.stringify(issues('register', { email: 'a@example.com', password: 'Sh0rt!' }));
    assert.ok(!leaked.includes('Sh0rt!'));
  });
});

describe('login, refresh and logout schemas', () => {
  test('login does not apply creation rules but bounds the length', () => {
    assert.ok(schemas.login.safeParse({ email: 'A@example.com', password: 'short' }).success);
    assert.equal(schemas.login.parse({ email: ' A@Example.com', password: 'x' }).email, 'a@example.com');
    assert.deepEqual(issues('login', { email: 'a@example.com', password: '' }), [{ field: 'password', message: 'is required' }]);
    assert.deepEqual(issues('login', { email: 'a@example.com', password: 'x'.repeat(129) }).map((i) => i.field), ['password']);
  });

  test('refresh needs a string refresh_token', () => {
    assert.deepEqual(issues('refresh', {}), [{ field: 'refresh_token', message: 'is required' }]);
    assert.deepEqual(issues('refresh', { refresh_token: 1 }), [{ field: 'refresh_token', message: 'must be a string' }]);
  });

  test('logout needs refresh_token unless all_sessions is true', () => {
    assert.deepEqual(issues('logout', {}), [{ field: 'refresh_token', message: 'is required' }]);
    assert.deepEqual(schemas.logout.parse({ all_sessions: true }), { all_sessions: true });
    assert.deepEqual(schemas.logout.parse({ refresh_token: 'abc' }), { refresh_token: 'abc', all_sessions: false });
    assert.deepEqual(issues('logout', { refresh_token: 'abc', all_sessions: 'yes' }), [
      { field: 'all_sessions', message: 'must be a boolean' },
    ]);
  });
});
