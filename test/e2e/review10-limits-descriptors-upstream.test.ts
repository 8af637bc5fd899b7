// What was wrong: with the gateway's descriptors used up (RLIMIT_NOFILE reached by a flood of idle client
// connections), connecting to an upstream failed in the gateway itself (socket(): EMFILE), and that failure was taken
// for the upstream's: a 502 upstream_unreachable, every upstream tried and put out of rotation (Upstream Down), and
// the active checks, failing the same way, called every upstream unhealthy. One descriptor spike emptied the
// rotation, and it stayed empty after the spike until the checks passed again.
// What is right now: a local failure to connect (EMFILE, ENFILE, ENOBUFS, ENOMEM) is a 503
// gateway_resources_exhausted, never held against an upstream (passive or active), and logged once per episode.
// The gateway is a real `portcullis start` under `prlimit --nofile`; the upstreams close every connection after
// their answer, so each request and probe needs a new descriptor.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { FAST_HEALTH_CHECKS, upstreams } from '../helpers/gateway.js';
import { connectedSocket, fillDescriptors, FLOOD_SETTINGS, openDescriptors, requestOn, spawnLimitedGateway } from '../helpers/descriptor-limit.js';
import { sleep, waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** An upstream that answers 200 and closes the connection: nothing for the gateway to reuse. */
async function closingUpstream(): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(200, { connection: 'close' }).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

test('descriptors used up: an upstream connect that fails with EMFILE is a 503 of the gateway, no upstream leaves rotation', async () => {
  const [a, b] = await Promise.all([closingUpstream(), closingUpstream()]);
  const ports = [a, b].map((s) => (s.address() as net.AddressInfo).port);
  const gw = await spawnLimitedGateway(
    {
      ...FLOOD_SETTINGS,
      load_balancing: { upstreams: upstreams(ports), health_check: FAST_HEALTH_CHECKS },
      routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
    },
    NOFILE,
  );
  cleanups.push(() => gw.cleanup());
  // A client connected before the flood: its connection already has its descriptor.
  const early = await connectedSocket(gw.port, cleanups);
  assert.equal((await requestOn(early, '/before')).status, 200);

  const flood = await fillDescriptors(gw.port, gw.child.pid!, NOFILE);
  cleanups.push(() => flood.release());
  // A descriptor can come free for a moment (an active check's connection, closed by its upstream once answered), and
  // a request that gets it is served: right, but no test of a full table; a batched CI run met that once (200), and
  // a fresh-clone CI of 2026-12-07 ten times in a row. So asked again, a few milliseconds apart so as not to fall in
  // step with the checks, until one meets EMFILE, none of them ever a 502 (the defect).
  let answer = { status: 0, body: '' };
  let during = '';
  for (let attempt = 0; attempt < 60 && answer.status !== 503; attempt++) {
    during = `/during-${attempt}`;
    answer = await requestOn(early, during);
    assert.ok(answer.status === 200 || answer.status === 503, `${answer.status} ${answer.body}`);
    if (answer.status !== 503) await sleep(7 + (attempt % 5) * 11);
  }
  assert.equal(answer.status, 503, answer.body);
  assert.equal(JSON.parse(answer.body).code, 'gateway_resources_exhausted');
  // Several rounds of active checks (every 100 ms) meet EMFILE too.
  await sleep(600);
  assert.equal(gw.child.exitCode, null, 'the gateway is still running');

  flood.release();
  await waitFor(() => openDescriptors(gw.child.pid!) < NOFILE / 2, 'the flood gone', 10_000);
  // The very first request after the flood is served: no upstream was taken out of rotation meanwhile.
  const res = await fetch(`${gw.url}/after`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  const events = gw.logs.map((l) => l.msg);
  assert.ok(!events.includes('Upstream Down'), 'no upstream taken out by a local failure');
  assert.ok(!events.includes('Upstream Unhealthy'), 'no active check verdict from a local failure');
  const exhausted = gw.logs.filter((l) => l.msg === 'Local Resources Exhausted');
  assert.equal(exhausted.length, 1, 'one warning for the episode');
  assert.equal(exhausted[0]!.code, 'EMFILE');
  assert.equal(gw.logs.find((l) => l.msg === 'Request Completed' && l.path === during)?.status, 503);
  // Once no connect has failed for 5 s, the episode's end, with how many failures it had.
  await waitFor(() => gw.logs.some((l) => l.msg === 'Local Resources Recovered'), 'the episode over', 10_000);
  const recovered = gw.logs.find((l) => l.msg === 'Local Resources Recovered')!;
  assert.equal(recovered.code, 'EMFILE');
  assert.ok(Number(recovered.failures) >= 1);
});
