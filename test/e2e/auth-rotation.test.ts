// Refresh-token rotation through the gateway: reuse detection after the grace period, leniency within it, races.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPair,
  assertSafeError,
  bearer,
  proxiedGet,
  register,
  startAuthStack,
  type AuthStack,
} from '../helpers/auth-gateway.js';
import type { TestResponse } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';

function refresh(stack: AuthStack, token: string): Promise<TestResponse> {
  return stack.client.postJson(`${stack.url}/auth/refresh`, { refresh_token: token });
}

describe('reuse after the grace period (refresh_reuse_grace: 0)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ jwt: { refresh_reuse_grace: 0 } });
  });
  after(() => stack.close());

  test('presenting a rotated token revokes the whole family, the newest token included', async () => {
    const user = await register(stack);
    const first = assertPair(await refresh(stack, user.refresh_token));
    const second = assertPair(await refresh(stack, first.refresh_token));

    // The stolen (already rotated) first token comes back.
    const replay = await refresh(stack, user.refresh_token);
    assertSafeError(replay, 401, [user.refresh_token]);
    // The legitimate holder's newest token is now dead too, and so is the one before it.
    assertSafeError(await refresh(stack, second.refresh_token), 401, [second.refresh_token]);
    assertSafeError(await refresh(stack, first.refresh_token), 401);
    // stop 54: the line names the request it came in on (its access line has the same request_id) and the client,
    // in the snake_case fields of every other line; before, only userId and familyId, under a free-text message.
    const warned = stack.gw.logs.find((l) => l.msg === 'Refresh Token Reused' && l.user_id === user.user_id);
    assert.ok(warned, 'reuse detection is logged with the user id');
    assert.equal(warned.request_id, replay.headers['x-request-id']);
    assert.equal(warned.client, '127.0.0.1');
    assert.equal(typeof warned.family_id, 'string');
    assert.equal(warned.level, 40);
  });

  test('reuse revokes only that family: another login of the same user keeps working', async () => {
    const user = await register(stack);
    const other = await stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
    assert.equal(other.status, 200);
    const otherRefresh = other.json<{ refresh_token: string }>().refresh_token;

    const rotated = assertPair(await refresh(stack, user.refresh_token));
    assertSafeError(await refresh(stack, user.refresh_token), 401);
    assertSafeError(await refresh(stack, rotated.refresh_token), 401);

    assertPair(await refresh(stack, otherRefresh));
  });

  test('access tokens already issued keep working until they expire (only refresh is revoked)', async () => {
    const user = await register(stack);
    const rotated = assertPair(await refresh(stack, user.refresh_token));
    assertSafeError(await refresh(stack, user.refresh_token), 401);
    const { res } = await proxiedGet(stack, '/', bearer(rotated.access_token));
    assert.equal(res.status, 200);
  });
});

describe('reuse within the grace period (refresh_reuse_grace: 30s)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ jwt: { refresh_reuse_grace: '30s' } });
  });
  after(() => stack.close());

  test('a just-rotated token is refused with 401 but the family survives', async () => {
    const user = await register(stack);
    const next = assertPair(await refresh(stack, user.refresh_token));
    for (let i = 0; i < 3; i++) assertSafeError(await refresh(stack, user.refresh_token), 401);
    const after = assertPair(await refresh(stack, next.refresh_token));
    assertPair(await refresh(stack, after.refresh_token));
    assert.ok(!stack.gw.logs.some((l) => l.msg === 'Refresh Token Reused'), 'no reuse detection within the grace');
  });

  test('10 parallel refreshes with the same token: exactly one 200, and its new token works', async () => {
    const user = await register(stack);
    const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(stack, user.refresh_token)));
    const ok = answers.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, `statuses: ${answers.map((r) => r.status).join(',')}`);
    for (const r of answers) if (r.status !== 200) assertSafeError(r, 401, [user.refresh_token]);
    const winner = assertPair(ok[0]!);
    assertPair(await refresh(stack, winner.refresh_token));
  });

  test('garbage, empty-looking and unknown refresh tokens get 401 without side effects', async () => {
    const user = await register(stack);
    for (const token of ['x', 'A'.repeat(43), `${user.refresh_token}x`, user.access_token]) {
      assertSafeError(await refresh(stack, token), 401, [token]);
    }
    assertPair(await refresh(stack, user.refresh_token));
  });
});

describe('a short, non-zero grace (refresh_reuse_grace: 200ms)', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack({ jwt: { refresh_reuse_grace: '200ms' } });
  });
  after(() => stack.close());

  test('once the grace has passed, a rotated token revokes the family', async () => {
    const user = await register(stack);
    const next = assertPair(await refresh(stack, user.refresh_token));
    await sleep(350);
    assertSafeError(await refresh(stack, user.refresh_token), 401);
    assertSafeError(await refresh(stack, next.refresh_token), 401, [next.refresh_token]);
  });
});
