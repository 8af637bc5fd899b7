// The unknown-email dummy verify after a failure: a full queue or a killed hashing process at the first unknown-email
// login must not change how every later one is answered (a cached failure answered them at once: 503 for ever, or
// no argon2 work at all, telling unknown emails from wrong passwords).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { hashChildren } from '../../test/helpers/hash-children.js';
import { HashProcess } from './hash-process.js';
import { HasherBusyError, PasswordHasher } from './password.js';

const cheap = { memory_kib: 1024, iterations: 1, parallelism: 1 };

/** What the hashing process was asked (through the real engine), and what it answered. */
interface Calls {
  hash: number;
  verify: number;
  answered: unknown[];
}

/** Counts the real engine's calls; `onCall` runs right after each call is sent to the child. */
function spyOnEngine(t: TestContext, onCall: (op: 'hash' | 'verify') => void = () => {}): Calls {
  const calls: Calls = { hash: 0, verify: 0, answered: [] };
  for (const op of ['hash', 'verify'] as const) {
    const original = HashProcess.prototype[op] as (this: HashProcess, ...args: never[]) => Promise<string | boolean>;
    t.mock.method(HashProcess.prototype, op, function (this: HashProcess, ...args: never[]) {
      calls[op]++;
      const answer = original.apply(this, args);
      onCall(op);
      answer.then((value) => calls.answered.push(value), (err: Error) => calls.answered.push(err.message));
      return answer;
    });
  }
  return calls;
}

describe('PasswordHasher.verifyDummy after a failure', () => {
  // Nothing else here keeps the event loop alive while a killed child's exit is delivered (HashProcess unrefs the
  // child; the channel, ref'd while an answer is awaited, closes with the kill): the gateway's listener does that.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 1000);
  });
  after(() => clearInterval(keepAlive));

  test('queue full at the first unknown-email verify: HasherBusy then, argon2 work again once the queue drains', async (t) => {
    const calls = spyOnEngine(t);
    const hasher = await PasswordHasher.create({ ...cheap, queue_limit: 1 }, { concurrency: 1 });
    // One hash runs and one waits: the gate is full right now.
    const busy = [hasher.hash('holding-the-slot'), hasher.hash('waiting-in-the-queue')];
    await assert.rejects(hasher.verifyDummy('first-unknown-email'), HasherBusyError);
    await Promise.all(busy);
    const before = calls.verify;
    for (let i = 0; i < 3; i++) await hasher.verifyDummy(`later-unknown-email-${i}`);
    assert.equal(calls.verify - before, 3, 'each later unknown-email login verifies in the hashing process');
    assert.deepEqual(calls.answered.slice(-3), [false, false, false]);
  });

  test('the queue is refused only while it is full: the first unknown-email verify does not refuse a later one', async (t) => {
    spyOnEngine(t);
    const hasher = await PasswordHasher.create({ ...cheap, queue_limit: 1 }, { concurrency: 1 });
    const busy = [hasher.hash('a'), hasher.hash('b')];
    const outcomes = await Promise.allSettled([hasher.verifyDummy('x'), ...busy]);
    assert.ok(outcomes[0]!.status === 'rejected' && outcomes[0].reason instanceof HasherBusyError);
    // Empty gate: nothing may be refused now.
    await hasher.verifyDummy('y');
    await hasher.verifyDummy('z');
  });

  test('the hashing process killed during the first unknown-email verify: later ones reach a new process', async (t) => {
    const before = hashChildren();
    let killed: number | undefined;
    const calls = spyOnEngine(t, () => {
      if (killed !== undefined) return;
      // The first call after start-up: kill the child it was just sent to, before it can answer.
      const fresh = [...hashChildren()].filter((pid) => !before.has(pid));
      assert.equal(fresh.length, 1, 'one new hashing process');
      killed = fresh[0]!;
      process.kill(killed, 'SIGKILL');
    });
    const hasher = await PasswordHasher.create(cheap, { concurrency: 1 });
    // The lost call is sent once more, to a replacement: it verifies (a mismatch) and no error escapes.
    await hasher.verifyDummy('first-unknown-email');
    assert.ok(killed !== undefined);
    assert.equal(calls.answered.at(-1), false);
    const verifies = calls.verify;
    for (let i = 0; i < 3; i++) await hasher.verifyDummy(`later-unknown-email-${i}`);
    assert.equal(calls.verify - verifies, 3, 'each later unknown-email login verifies in the hashing process');
    assert.deepEqual(calls.answered.slice(-3), [false, false, false], 'and a live process answered');
    const now = [...hashChildren()].filter((pid) => !before.has(pid));
    assert.equal(now.length, 1, 'a replacement process');
    assert.notEqual(now[0], killed);
  });

  test('an unknown email costs one argon2 run, as a wrong password does: nothing is hashed for the dummy', async (t) => {
    const calls = spyOnEngine(t);
    const hasher = await PasswordHasher.create(cheap, { concurrency: 1 });
    const stored = await hasher.hash('SecurePass123!');
    const hashes = calls.hash;
    await hasher.verifyDummy('first-unknown-email');
    await hasher.verify(stored, 'wrong-password');
    assert.equal(calls.hash, hashes, 'no hash for the dummy');
    assert.equal(calls.verify, 2);
  });
});
