// What was wrong: a flood of idle connections to the admin port (the dashboard and /ready need no token) that used
// up the gateway's descriptors (RLIMIT_NOFILE) left no trace in its log: past the limit the event loop accepts and
// closes each further connection unseen, on the proxy port as on the admin port. The proxy port's accepts were
// watched (review10-limits-descriptors-accept); the admin port's were not.
// What is right now: the admin port's accept that takes the last descriptor opens the same episode, one Local
// Resources Exhausted (EMFILE, where accept) however many clients are refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { fillDescriptors, openDescriptors, spawnLimitedGateway } from '../helpers/descriptor-limit.js';
import { waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('a flood of the admin port past RLIMIT_NOFILE: one warning for the episode', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const gw = await spawnLimitedGateway(
    {
      admin: { enabled: true, listen_port: 0 },
      server: { timeouts: { header: '60s', idle: '60s' } },
      load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
    },
    NOFILE,
  );
  cleanups.push(() => gw.cleanup());
  const flood = await fillDescriptors(gw.adminPort!, gw.child.pid!, NOFILE);
  cleanups.push(() => flood.release());
  await waitFor(() => gw.logs.some((l) => l.msg === 'Local Resources Exhausted'), 'the warning', 5_000);
  const exhausted = gw.logs.filter((l) => l.msg === 'Local Resources Exhausted');
  assert.equal(exhausted.length, 1);
  assert.equal(exhausted[0]!.code, 'EMFILE');
  assert.equal(exhausted[0]!.where, 'accept');
  flood.release();
  await waitFor(() => openDescriptors(gw.child.pid!) < NOFILE / 2, 'the flood gone', 10_000);
  const ready = await fetch(`http://127.0.0.1:${gw.adminPort}/ready`);
  assert.equal(ready.status, 200);
  await ready.arrayBuffer();
});
