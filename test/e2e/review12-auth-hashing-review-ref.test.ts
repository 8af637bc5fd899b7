// The hashing process lost under several calls at once: every call is sent on to the replacement, and the caller's
// process is kept alive until they are answered. The replacement's channel was ref'd only when a call found nothing
// else pending; calls sent on arrive with each other pending, so a caller with nothing else to hold its event loop
// (a CLI, a script embedding the engine) exited with code 13, its calls neither answered nor failed (found by review
// of 9802277c; one call in flight was unaffected).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const engineUrl = new URL('../../src/auth/hash-process.ts', import.meta.url).href;

/** A script that awaits `calls` verifies on one HashProcess, SIGKILLing its hashing process under them. */
function script(calls: number): string {
  return `
import { readdirSync, readFileSync } from 'node:fs';
import { HashProcess } from ${JSON.stringify(engineUrl)};
const kids = () => readdirSync('/proc/self/task').flatMap((t) =>
  readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim().split(' ').filter(Boolean).map(Number));
const engine = new HashProcess();
const hash = await engine.hash('pw', { type: 2, memoryCost: 65536, timeCost: 3, parallelism: 1 });
const pending = Array.from({ length: ${calls} }, () => engine.verify(hash, 'pw'));
for (const pid of kids()) process.kill(pid, 'SIGSTOP');
await new Promise((r) => setTimeout(r, 300));
for (const pid of kids()) process.kill(pid, 'SIGKILL');
const results = await Promise.allSettled(pending);
console.log(JSON.stringify(results.map((r) => r.status === 'fulfilled' ? r.value : 'rejected')));
`;
}

function run(calls: number): { status: number | null; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'review12-ref-'));
  try {
    const file = join(dir, 'run.mts');
    writeFileSync(file, script(calls));
    const out = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 60_000, cwd: process.cwd() });
    return { status: out.status, stdout: out.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('hashing process lost under several calls', { concurrency: true }, () => {
  test('one call in flight: resent and answered, the caller exits 0', () => {
    const out = run(1);
    assert.equal(out.status, 0);
    assert.equal(out.stdout.trim(), '[true]');
  });

  test('two calls in flight: both resent and answered, the caller does not exit early with code 13', () => {
    const out = run(2);
    assert.equal(out.status, 0, `exit ${out.status}, stdout ${JSON.stringify(out.stdout)}`);
    assert.equal(out.stdout.trim(), '[true,true]');
  });
});
