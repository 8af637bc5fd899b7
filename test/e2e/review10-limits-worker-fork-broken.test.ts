// What was wrong: 4f8cfe3 made a worker fork that fails (node reports it as an 'error' on the worker, never an
// 'exit') be tried again every second, for ever, logged once as Local Resources Exhausted, whatever its code. Meant
// for the primary's descriptors used up (EMFILE), it took in a fork that can never succeed too: node's binary gone
// (ENOENT: removed or replaced by an upgrade under the running primary), not executable (EACCES), an environment
// too large to exec (E2BIG). The gateway then ran on a worker short (or with none) for ever, retrying at 1 s, its one
// log line calling a missing binary a shortage of local resources; before 4f8cfe3 the primary stopped (an uncaught
// exception), and a worker that cannot start is what the restart policy gives up on (worker-restarts.ts).
// What is right now: only a shortage (EMFILE, ENFILE, EAGAIN, ENOMEM) is retried every second without counting; any
// other fork failure is logged with its code (Worker Fork Failed) and counted as a failed start, with backoff, so
// the primary gives up (exit 1) as it does for workers that die before they serve, once no worker serves (while one
// does, the fork is retried with backoff for as long as it takes: review15-lifecycle-worker-restart-while-serving).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startProcess, writeConfig } from '../helpers/gateway.js';
import { childrenOf } from '../helpers/workers.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test("a worker fork that fails for good (node's binary removed under the primary) is given up on, not retried every second for ever", async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  // The gateway runs a second name of node's binary (a hard link: same file, no copy); removing that name later
  // makes every fork of the primary (which spawns process.execPath) fail with ENOENT, as an upgrade that removed it.
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-node-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const node = join(dir, 'node');
  linkSync(process.execPath, node);
  const configFile = writeConfig({
    admin: { enabled: false },
    server: { workers: 2 },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
  });
  const gw = await startProcess(node, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], configFile, { timeoutMs: 30_000 });
  cleanups.push(() => gw.cleanup());
  const primary = gw.child.pid!;
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers started', 10_000);

  unlinkSync(node);
  for (const pid of childrenOf(primary)) process.kill(pid, 'SIGKILL'); // both workers: none left serving
  // Before: still running after any wait, one fork every second. Now: a few forks with backoff, then it gives up.
  let bound: NodeJS.Timeout | undefined;
  const running = new Promise<'running'>((resolve) => (bound = setTimeout(() => resolve('running'), 20_000)));
  const exit = await Promise.race([gw.exited, running]);
  clearTimeout(bound);
  if (exit === 'running') assert.fail('the primary gave up on a fork that cannot succeed: still running after 20 s');
  assert.equal(exit.code, 1);
  assert.ok(!gw.logs.some((l) => l.msg === 'Local Resources Exhausted'), 'a missing binary is no shortage of local resources');
  const failed = gw.logs.filter((l) => l.msg === 'Worker Fork Failed');
  assert.ok(failed.length >= 1, 'each failed fork logged with its code');
  assert.equal(failed[0]!.code, 'ENOENT');
  assert.ok(gw.logs.some((l) => String(l.msg).startsWith('Workers Failing At Start-up')), 'the give-up said');
  assert.ok(!gw.logs.some((l) => l.msg === 'Uncaught Exception'));
});
