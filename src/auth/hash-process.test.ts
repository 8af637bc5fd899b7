// The hashing process: argon2 runs outside the gateway process, at nice 19, and a dead child is replaced.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { HashProcess } from './hash-process.js';

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
    const engine = new HashProcess();
    try {
      await assert.rejects(engine.verify('not-a-hash', 'x'));
      const hash = await engine.hash('pw', cheap);
      const pid = children().at(-1)!;
      process.kill(pid, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(await engine.verify(hash, 'pw'), true);
    } finally {
      engine.close();
    }
  });
});
