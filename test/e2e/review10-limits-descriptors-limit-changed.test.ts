// What was wrong: the accept watch (02bb5b8) read RLIMIT_NOFILE once, when the listener was made, and compared every
// accepted descriptor with that. A limit changed under the running gateway (prlimit --pid) was never seen: lowered,
// the flood that used up the new limit left the log silent, as before 02bb5b8; raised (the remedy Descriptor Limit
// Low names, done live by root), every accept past the old limit counted as a failure of an EMFILE episode with
// descriptors to spare, a false Local Resources Exhausted that lasted as long as the traffic stayed above it.
// What is right now: the limit is read again at most once a second, and whenever the one held says an accept took
// the last descriptor: the watch follows the limit as it is now. (This test lowers it: raising a hard limit needs
// CAP_SYS_RESOURCE, which a test cannot count on; the same reading serves both.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { fillDescriptors } from '../helpers/descriptor-limit.js';
import { sleep, waitFor } from '../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('RLIMIT_NOFILE lowered under a running gateway: the flood that uses up the new limit is still reported', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const gw = await spawnGateway({
    admin: { enabled: false },
    server: { timeouts: { header: '60s', idle: '60s' } },
    load_balancing: { upstreams: upstreams([b.port]) },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
  });
  cleanups.push(() => gw.cleanup());
  const pid = gw.child.pid!;
  const limit = readdirSync(`/proc/${pid}/fd`).length + 100;
  const hard = execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--raw', '--noheadings', '--output=HARD']).toString().trim();
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${hard}`]);
  // The watch may have read the limit just before: past its once-a-second reading.
  await sleep(1_100);
  const flood = await fillDescriptors(gw.port, pid, limit);
  cleanups.push(() => flood.release());
  await waitFor(() => gw.logs.some((l) => l.msg === 'Local Resources Exhausted'), 'the exhaustion at the lowered limit', 10_000);
  const exhausted = gw.logs.filter((l) => l.msg === 'Local Resources Exhausted');
  assert.equal(exhausted.length, 1, 'one line for the episode');
  assert.equal(exhausted[0]!.code, 'EMFILE');
  assert.equal(exhausted[0]!.where, 'accept');
});
