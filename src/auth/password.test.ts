// argon2id hashing: verify, rehash detection when parameters change, and the dummy verify for unknown emails.
// npm test: runs alone (it finds its hashing processes among this process's children).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashChildren, newHashChild } from '../../test/helpers/hash-children.js';
import { HasherBusyError, IllFormedPasswordError, PasswordHasher } from './password.js';

/** CPU time every thread of process `pid` has run, in ms (schedstat's nanoseconds: clock ticks are 10 ms). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1e6;
}

// Small parameters keep the suite fast; the defaults are covered by the config schema.
const cheap = { memory_kib: 1024, iterations: 1, parallelism: 1 };

describe('PasswordHasher', () => {
  test('hashes with argon2id and the configured parameters; verifies the right password only', async () => {
    const hasher = await PasswordHasher.create(cheap);
    const hash = await hasher.hash('SecurePass123!');
    assert.match(hash, /^\$argon2id\$v=19\$/);
    assert.deepEqual(hash.split('$')[3]!.split(',').sort(), ['m=1024', 'p=1', 't=1']);
    assert.ok(!hash.includes('SecurePass123!'));
    assert.deepEqual(await hasher.verify(hash, 'SecurePass123!'), { ok: true, needsRehash: false });
    assert.deepEqual(await hasher.verify(hash, 'SecurePass123?'), { ok: false });
    assert.notEqual(await hasher.hash('SecurePass123!'), hash, 'salted: two hashes differ');
  });

  test('a hash made with older parameters verifies and asks for a rehash', async () => {
    const old = await (await PasswordHasher.create(cheap)).hash('SecurePass123!');
    const current = await PasswordHasher.create({ ...cheap, iterations: 2 });
    assert.deepEqual(await current.verify(old, 'SecurePass123!'), { ok: true, needsRehash: true });
    const fresh = await current.hash('SecurePass123!');
    assert.deepEqual(await current.verify(fresh, 'SecurePass123!'), { ok: true, needsRehash: false });
  });

  test('a malformed stored hash is a mismatch, not an error', async () => {
    const hasher = await PasswordHasher.create(cheap);
    assert.deepEqual(await hasher.verify('not-a-hash', 'x'), { ok: false });
  });

  test('Unicode-equivalent passwords match (NFKC)', async () => {
    const hasher = await PasswordHasher.create(cheap);
    const hash = await hasher.hash('caf\u00e9-password');
    assert.equal((await hasher.verify(hash, 'cafe\u0301-password')).ok, true);
  });

  test('an unpaired surrogate is never hashed and never matches the hash of U+FFFD its UTF-8 form would be', async () => {
    const hasher = await PasswordHasher.create(cheap);
    await assert.rejects(hasher.hash('Secure\ud800Pass123!'), IllFormedPasswordError);
    const replaced = await hasher.hash('Secure\ufffdPass123!');
    assert.deepEqual(await hasher.verify(replaced, 'Secure\ud800Pass123!'), { ok: false });
    assert.deepEqual(await hasher.verify(replaced, 'Secure\udfffPass123!'), { ok: false });
    assert.equal((await hasher.verify(replaced, 'Secure\ufffdPass123!')).ok, true);
  });

  test('verifyDummy resolves and does the work of a real verify', async () => {
    const params = { memory_kib: 8192, iterations: 2, parallelism: 1 };
    const hasher = await PasswordHasher.create(params);
    const before = hashChildren();
    const hash = await hasher.hash('SecurePass123!');
    const hashing = newHashChild(before); // started by that first call
    assert.ok(cpuMs(hashing) > 0, 'its CPU time is read (schedstat)');
    // The CPU time the hashing process spends on each, not the wall time: it runs at nice 19, so under a loaded
    // machine its wall times are the scheduler's (they once measured 4.3x apart, either side, in loaded CI runs).
    const time = async (fn: () => Promise<unknown>): Promise<number> => {
      const start = cpuMs(hashing);
      await fn();
      return cpuMs(hashing) - start;
    };
    // Warm both paths first: the first argon2 runs of a process pay for thread start-up and memory, not for the work.
    await hasher.verify(hash, 'wrong-password');
    await hasher.verifyDummy('wrong-password');
    // Interleaved, and the medians compared: what the machine's load does to CPU time (caches shared with others)
    // lands on one sample of one side, not all of one side.
    const reals: number[] = [];
    const dummies: number[] = [];
    for (let i = 0; i < 9; i++) {
      reals.push(await time(() => hasher.verify(hash, 'wrong-password')));
      dummies.push(await time(() => hasher.verifyDummy('wrong-password')));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const real = median(reals);
    const dummy = median(dummies);
    // The same argon2 parameters: the same work, within what a shared machine's caches do to it.
    assert.ok(dummy > real / 2 && dummy < real * 2, `CPU time: real ${real.toFixed(1)}ms, dummy ${dummy.toFixed(1)}ms`);
  });
  test('queue_limit: past the running and queued hashes, verify, verifyDummy and hash reject with HasherBusyError at once', async () => {
    const hasher = await PasswordHasher.create({ ...cheap, queue_limit: 2 }, { concurrency: 1 });
    const stored = await hasher.hash('SecurePass123!');
    // One runs, two wait, the rest are refused without waiting.
    const calls = [
      ...Array.from({ length: 4 }, () => hasher.verify(stored, 'SecurePass123!')),
      hasher.verifyDummy('whatever'),
      hasher.hash('another one'),
    ];
    const outcomes = await Promise.allSettled(calls);
    const refused = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(refused.length, 3, JSON.stringify(outcomes.map((o) => o.status)));
    for (const o of refused) assert.ok((o as PromiseRejectedResult).reason instanceof HasherBusyError);
    assert.deepEqual(outcomes.slice(0, 3).map((o) => o.status), ['fulfilled', 'fulfilled', 'fulfilled']);
    // Once the queue drained, hashing works again.
    assert.deepEqual(await hasher.verify(stored, 'SecurePass123!'), { ok: true, needsRehash: false });
  });
});
