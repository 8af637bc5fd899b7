// The hashing process: argon2 runs outside the gateway process, at nice 19, and a dead child is replaced.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { HashProcess, HashProcessLostError } from './hash-process.js';

const cheap = { type: 2 as const, memoryCost: 1024, timeCost: 1, parallelism: 1 };

/** Child pids of this process, from /proc (Linux). */
function children(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) =>
    readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number),
  );
}

/** The nice value of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceValues(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[16]);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** This process's children started since `before`, other than `gone`. */
const newChildren = (before: ReadonlySet<number>, ...gone: number[]): number[] =>
  children().filter((pid) => !before.has(pid) && !gone.includes(pid));

/** Pauses process `pid`, makes `call` (sent to it while it cannot answer), then kills it under the call. */
async function killUnder<T>(pid: number, call: () => Promise<T>): Promise<{ answer: Promise<T> }> {
  process.kill(pid, 'SIGSTOP');
  const pending = call();
  await sleep(200);
  process.kill(pid, 'SIGKILL');
  // Wrapped: an async function returning the promise itself would wait for the answer.
  return { answer: pending };
}

describe('HashProcess', () => {
  test('hashes in a child process whose main and hashing threads run at nice 19', async () => {
    const before = new Set(children());
    const engine = new HashProcess();
    try {
      const hash = await engine.hash('SecurePass123!', cheap);
      assert.match(hash, /^\$argon2id\$v=19\$/);
      assert.equal(await engine.verify(hash, 'SecurePass123!'), true);
      assert.equal(await engine.verify(hash, 'wrong'), false);
      const spawned = children().filter((pid) => !before.has(pid));
      assert.equal(spawned.length, 1);
      const nice = threadNiceValues(spawned[0]!);
      // The main thread and libuv's pool threads (created by the first hash) run at 19; V8's own helper threads,
      // started before the child lowered its priority, may not.
      assert.ok(nice.filter((n) => n === 19).length >= 2, `nice values ${nice.join(',')}`);
    } finally {
      engine.close();
    }
  });

  test('a malformed stored hash rejects without killing the child; a killed child is replaced', async () => {
    const before = new Set(children());
    const engine = new HashProcess();
    try {
      await assert.rejects(engine.verify('not-a-hash', 'x'));
      const hash = await engine.hash('pw', cheap);
      const [pid] = newChildren(before);
      process.kill(pid!, 'SIGKILL');
      // Whether or not its end has been noticed yet, the next call is answered by a live process.
      assert.equal(await engine.verify(hash, 'pw'), true);
    } finally {
      engine.close();
    }
  });

  test('a call in flight when its process is killed is sent once to a replacement; lost twice, it fails with HashProcessLostError', async () => {
    const before = new Set(children());
    const engine = new HashProcess();
    try {
      const hash = await engine.hash('pw', cheap);
      const [first] = newChildren(before);
      assert.equal(await (await killUnder(first!, () => engine.verify(hash, 'pw'))).answer, true);

      const [second] = newChildren(before, first!);
      const { answer: lost } = await killUnder(second!, () => engine.verify(hash, 'pw'));
      // The replacement is paused as it starts, and killed once the call has been sent to it.
      let third: number | undefined;
      while (third === undefined) {
        await sleep(5);
        third = newChildren(before, first!, second!)[0];
      }
      await killUnder(third, async () => undefined);
      await assert.rejects(lost, HashProcessLostError);
      // And the engine goes on: a fourth process answers.
      assert.equal(await engine.verify(hash, 'pw'), true);
    } finally {
      engine.close();
    }
  });

  test('close() fails the calls in flight and starts no new process for them', async () => {
    const before = new Set(children());
    const engine = new HashProcess();
    const hash = await engine.hash('pw', cheap);
    const [pid] = newChildren(before);
    process.kill(pid!, 'SIGSTOP');
    const pending = engine.verify(hash, 'pw');
    await sleep(100);
    engine.close();
    process.kill(pid!, 'SIGKILL');
    await assert.rejects(pending, HashProcessLostError);
    await sleep(300);
    assert.deepEqual(newChildren(before, pid!), [], 'no replacement was started');
  });
});
