// The password-hashing process lost under a call (the kernel's OOM killer takes the process holding argon2's memory
// first): the call is sent once more to a replacement process, so the right password still logs in and a register
// still stores its user. A second loss under the same call is 503 with Retry-After (the hasher unavailable), never
// 401 for a right password.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashChildren, newHashChild } from '../helpers/hash-children.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { register, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import type { TestResponse } from '../helpers/http.js';

const login = (stack: AuthStack, email: string, password: string): Promise<TestResponse> =>
  stack.client.postJson(`${stack.url}/auth/login`, { email, password });

/** Pauses the hashing process `pid`, starts `call` (which reaches it and waits), then kills it under the call. */
async function killUnder<T>(pid: number, call: () => Promise<T>): Promise<{ answer: Promise<T> }> {
  process.kill(pid, 'SIGSTOP');
  const pending = call();
  // The request reaches the (paused) hashing process well within this.
  await sleep(300);
  process.kill(pid, 'SIGKILL');
  // Wrapped: an async function returning the promise itself would wait for the answer.
  return { answer: pending };
}

/** The replacement started after `gone` died, once it exists (it is started by the call being sent again). */
async function replacementOf(before: ReadonlySet<number>, gone: number): Promise<number> {
  let found: number | undefined;
  await waitFor(() => {
    found = [...hashChildren()].find((pid) => !before.has(pid) && pid !== gone);
    return found !== undefined;
  }, 'a replacement hashing process');
  return found!;
}

describe('the hashing process lost under a call', () => {
  test('login: killed while it verifies the right password, the login is still 200 (the replacement answers)', async () => {
    const before = hashChildren();
    const stack = await startAuthStack();
    try {
      const user = await register(stack);
      const child = newHashChild(before);
      const res = await (await killUnder(child, () => login(stack, user.email, user.password))).answer;
      assert.equal(res.status, 200, res.text);
      assert.notEqual(await replacementOf(before, child), child);
      // Wrong passwords are still told apart by the replacement.
      assert.equal((await login(stack, user.email, 'wrong-password-1')).status, 401);
    } finally {
      await stack.close();
    }
  });

  test('register: killed while it hashes, the user is stored (201) and logs in', async () => {
    const before = hashChildren();
    const stack = await startAuthStack();
    try {
      await register(stack); // starts the hashing process
      const child = newHashChild(before);
      const email = uniqueEmail('oom');
      const res = await (await killUnder(child, () => stack.client.postJson(`${stack.url}/auth/register`, { email, password: 'Killed-once-pw-1' }))).answer;
      assert.equal(res.status, 201, res.text);
      assert.equal((await login(stack, email, 'Killed-once-pw-1')).status, 200);
    } finally {
      await stack.close();
    }
  });

  test('login: the replacement killed too, 503 password_hasher_busy with Retry-After, not 401; then 200', async () => {
    const before = hashChildren();
    const stack = await startAuthStack();
    try {
      const user = await register(stack);
      const child = newHashChild(before);
      const { answer: pending } = await killUnder(child, () => login(stack, user.email, user.password));
      // The replacement is paused as soon as it exists (node takes far longer to start than the poll), then killed
      // with the call sent to it: the call is lost twice.
      const second = await replacementOf(before, child);
      process.kill(second, 'SIGSTOP');
      await sleep(300);
      process.kill(second, 'SIGKILL');
      const res = await pending;
      assert.equal(res.status, 503, res.text);
      assert.equal(res.json().code, 'password_hasher_busy');
      assert.ok(Number(res.headers['retry-after']) >= 1, 'Retry-After');
      assert.doesNotMatch(res.text, /exited|argon2|child|stack/i);
      // The next login starts a third process and succeeds.
      assert.equal((await login(stack, user.email, user.password)).status, 200);
    } finally {
      await stack.close();
    }
  });
});
