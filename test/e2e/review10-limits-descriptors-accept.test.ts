// What was wrong: a flood of idle connections that used up the gateway's descriptors (RLIMIT_NOFILE) left no trace in
// its log. Past the limit, accept() fails with EMFILE and the event loop accepts and closes each further connection
// unseen: clients were reset for as long as the flood lasted, and the operator had nothing to see why.
// What is right now: the accept that takes the last descriptor opens an episode, one Local Resources Exhausted
// (code EMFILE, where accept) for it, never a line per refused client; the episode ends (Local Resources Recovered)
// only once a descriptor can be opened again, not while the table stays full. Held meanwhile: the gateway stays up,
// a client connected before the flood is still served, and new clients are served again once the flood goes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { connectedSocket, fillDescriptors, FLOOD_SETTINGS, openDescriptors, requestOn, spawnLimitedGateway } from '../helpers/descriptor-limit.js';
import { sleep, waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('a flood past RLIMIT_NOFILE: one warning per episode, the clients already in still served, recovery once it goes', async () => {
  const b = await startBackend('api', 0, { keepAliveTimeoutMs: 60_000 });
  cleanups.push(() => b.stop());
  const gw = await spawnLimitedGateway(
    {
      ...FLOOD_SETTINGS,
      load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }] },
      routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
    },
    NOFILE,
  );
  cleanups.push(() => gw.cleanup());
  const early = await connectedSocket(gw.port, cleanups);
  // Its upstream connection is open and kept alive: serving it again needs no new descriptor.
  assert.equal((await requestOn(early, '/before')).status, 200);

  const flood = await fillDescriptors(gw.port, gw.child.pid!, NOFILE);
  cleanups.push(() => flood.release());
  assert.equal((await requestOn(early, '/during')).status, 200, 'a client connected before the flood is served');
  // Longer than an episode's quiet time: the table is still full, so the episode is not over.
  await sleep(7_000);
  assert.equal(gw.child.exitCode, null, 'the gateway is still running');
  const exhausted = gw.logs.filter((l) => l.msg === 'Local Resources Exhausted');
  assert.equal(exhausted.length, 1, 'one warning for the episode, not one per refused client');
  assert.equal(exhausted[0]!.code, 'EMFILE');
  assert.equal(exhausted[0]!.where, 'accept');
  assert.ok(!gw.logs.some((l) => l.msg === 'Local Resources Recovered'), 'not over while the table is full');

  flood.release();
  await waitFor(() => openDescriptors(gw.child.pid!) < NOFILE / 2, 'the flood gone', 10_000);
  const res = await fetch(`${gw.url}/after`);
  assert.equal(res.status, 200, 'a new client is served once the flood has gone');
  await res.arrayBuffer();
  await waitFor(() => gw.logs.some((l) => l.msg === 'Local Resources Recovered'), 'the episode over', 10_000);
  assert.equal(gw.logs.filter((l) => l.msg === 'Local Resources Exhausted').length, 1);
});
