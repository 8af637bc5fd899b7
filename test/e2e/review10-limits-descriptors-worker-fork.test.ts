// What was wrong: a multi-worker gateway's primary restarts a worker that died; with the primary's descriptors used
// up (RLIMIT_NOFILE: it accepts every connection and hands it on, and holds each worker's IPC channel), that
// cluster.fork() failed with EMFILE, which node reports as an 'error' event on the worker. Nobody listened: an
// uncaught exception in the primary, which stopped the whole gateway, every worker with it. (node never reports an
// 'exit' for such a fork either, so no restart would have followed.)
// What is right now: a fork that fails is logged (once per episode) and tried again a second later, until it
// succeeds; the gateway serves on with the workers it has.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { childrenOf } from '../helpers/workers.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The lowest descriptor number process `pid` does not hold: a soft limit there leaves it no descriptor to open. */
function lowestFree(pid: number): number {
  const held = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let n = 0;
  while (held.has(n)) n++;
  return n;
}

test("the primary's descriptors used up while it restarts a worker: it runs on, and forks once they are free", async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const gw = await spawnGateway({
    admin: { enabled: false },
    server: { workers: 2 },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
  });
  cleanups.push(() => gw.cleanup());
  const primary = gw.child.pid!;
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers started', 10_000);
  const [victim, survivor] = childrenOf(primary);
  // The soft limit lowered to what the primary holds (the hard one kept, so it can be raised again unprivileged).
  execFileSync('prlimit', ['--pid', String(primary), `--nofile=${lowestFree(primary)}:${20_000}`]);
  process.kill(victim!, 'SIGKILL');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Worker Exited'), 'the exit seen', 5_000);
  // Several restart attempts' time.
  await sleep(2_500);
  assert.equal(gw.child.exitCode, null, 'the primary is still running');
  assert.ok(!gw.logs.some((l) => l.msg === 'Uncaught Exception'), 'no uncaught exception');
  const failed = gw.logs.filter((l) => l.msg === 'Local Resources Exhausted');
  assert.equal(failed.length, 1, 'one line for the episode, not one per attempt');
  assert.equal(failed[0]!.code, 'EMFILE');
  assert.equal(failed[0]!.where, 'worker_fork');
  assert.deepEqual(childrenOf(primary), [survivor]);
  const res = await fetch(`${gw.url}/meanwhile`);
  assert.equal(res.status, 200, 'served by the worker left');
  await res.arrayBuffer();

  execFileSync('prlimit', ['--pid', String(primary), '--nofile=20000:20000']);
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 3, 'a worker forked in its place', 10_000);
  assert.equal(childrenOf(primary).length, 2);
});
