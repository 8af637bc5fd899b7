// An API key lives at least one second: `expires_in` (the admin API) and `--expires-in` (the CLI) under 1s are refused
// as any invalid lifetime is (400 invalid_body on expires_in; exit 2, bad usage), and no key is made. Before,
// `--expires-in 0.0006` (0.6 ms, rounded to 1 ms) or `"500ms"` made a key that had expired before anyone could use it,
// 201 / exit 0, while 0.0004 (rounded to 0) was refused.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminStackHooks, identityCliStore } from '../helpers/identity.js';

const RULE = 'must be a duration of at least 1s and at most 3650d (10 years); leave it out for a key that never expires';

describe('POST /admin/api-keys: expires_in under one second', () => {
  const hooks = adminStackHooks();
  const admin = () => hooks.admin();

  test('is 400 invalid_body on expires_in, and no key is made', async () => {
    for (const expires_in of [0.0006, 0.999, '500ms', '0.5s', '999ms', 0]) {
      const res = await admin().post('/admin/api-keys', { name: 'blink', expires_in });
      assert.equal(res.status, 400, `${String(expires_in)}: ${res.text}`);
      const error = res.json<{ code: string; details: { field: string; message: string }[] }>();
      assert.equal(error.code, 'invalid_body');
      assert.deepEqual(error.details, [{ field: 'expires_in', message: RULE }], String(expires_in));
    }
    const listed = await admin().get('/admin/api-keys');
    assert.deepEqual(listed.json<{ api_keys: unknown[] }>().api_keys, []);
  });

  test('every documented form of one second or more still makes a key', async () => {
    for (const [expires_in, ms] of [
      [1, 1_000],
      ['1s', 1_000],
      ['1000ms', 1_000],
      [2.5, 2_500],
      ['15m', 900_000],
      ['90d', 90 * 86_400_000],
      ['3650d', 3650 * 86_400_000],
    ] as const) {
      const before = Date.now();
      const res = await admin().post('/admin/api-keys', { name: `ok-${String(expires_in)}`, expires_in });
      assert.equal(res.status, 201, `${String(expires_in)}: ${res.text}`);
      const lifetime = Date.parse(res.json<{ expires_at: string }>().expires_at) - before;
      assert.ok(Math.abs(lifetime - ms) < 5_000, `${String(expires_in)}: lives ${lifetime} ms`);
    }
  });
});

describe('api-keys create --expires-in under one second', () => {
  const { cli } = identityCliStore();

  test('is bad usage (exit 2) naming the option and the rule, and no key is made', async () => {
    for (const value of ['0.0006', '500ms', '0']) {
      const res = await cli(['api-keys', 'create', 'blink', '--expires-in', value]);
      assert.equal(res.code, 2, `${value}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, new RegExp(`^portcullis: --expires-in: ${RULE.replace(/[()]/g, '\\$&')}\\n`), value);
      assert.equal(res.stdout, '');
    }
    const listed = await cli(['api-keys', 'list', '--json']);
    assert.deepEqual(JSON.parse(listed.stdout), { api_keys: [], next_cursor: null });
  });

  test('one second, and the README forms, still make a key', async () => {
    for (const value of ['1', '1s', '90d']) {
      const res = await cli(['api-keys', 'create', `ok-${value}`, '--expires-in', value, '--json']);
      assert.equal(res.code, 0, `${value}: ${res.stderr}`);
    }
  });
});
