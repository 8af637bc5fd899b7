// What was wrong: a gateway whose stdout nobody reads (a log shipper that stalled, a `docker logs` driver that
// blocks) or whose stdout reader has gone (started `| head -1`). While it ran, the line writer held at most 16 MiB
// and dropped the rest, but nothing told the operator: the "Log Lines Dropped" report goes to that same stdout, and
// /metrics had no count of lost lines. And at the stop, the writer waited for the stalled pipe for ever: SIGTERM
// drained the requests, then the process never exited (a supervisor's stop ran into its SIGKILL).
// What is right now: portcullis_log_lines_dropped_total{destination} counts every line lost; a stop waits at most
// 5 s for a stdout that takes nothing, then gives the rest up and exits 0. Requests are served all along with
// bounded memory, and a stdout that is closed outright costs no error storm and no stack trace.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';

const client = createClient({ connections: 16 });
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A gateway process before a backend, with its admin port; stopped after the file. */
async function gateway(): Promise<GatewayProcess> {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const gw = await spawnGateway({ load_balancing: { upstreams: upstreams([backend.port]) } });
  cleanups.push(() => gw.cleanup());
  return gw;
}

/** `count` requests, 16 at a time, each with a path of `pathBytes` (its two access lines carry it). All 200. */
async function load(gw: GatewayProcess, count: number, pathBytes: number): Promise<void> {
  const pad = 'p'.repeat(pathBytes);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        const res = await client.request(`${gw.url}/load/${i}/${pad}`);
        assert.equal(res.status, 200);
      }
    }),
  );
}

async function dropped(gw: GatewayProcess, destination: string): Promise<number | undefined> {
  const text = (await client.request(`http://127.0.0.1:${gw.adminPort}/metrics`)).text;
  return sampleValue(text, 'portcullis_log_lines_dropped_total', { destination });
}

/** The exit of a stopped gateway, or 'still running' once `boundMs` has passed (the test then fails). */
async function exitWithin(gw: GatewayProcess, boundMs: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), boundMs)));
  const result = await Promise.race([gw.exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  return result;
}

/** nodejs_external_memory_bytes (buffers outside V8's heap) of the gateway whose admin port is at `admin`. */
async function externalMemory(admin: string): Promise<number> {
  const text = (await client.request(`${admin}/metrics`)).text;
  return sampleValue(text, 'nodejs_external_memory_bytes') ?? Number.NaN;
}

test('a stdout nobody reads: requests served, memory bounded, lost lines counted in /metrics, SIGTERM still exits', async () => {
  const gw = await gateway();
  assert.equal(await dropped(gw, 'stdout'), 0, 'the series is there from the first scrape');
  assert.equal(await dropped(gw, 'access_log_file'), 0);
  await load(gw, 50, 100);
  // From here on nobody reads the gateway's stdout: the pipe and the reader's buffer fill, then the writer's 16 MiB.
  // About 24 KB of access lines a request: the first 1,000 requests fill them all; the next 5,000 write some 120 MB
  // more, which a writer that kept every line would hold too.
  gw.child.stdout!.pause();
  await load(gw, 1_000, 12_000);
  await load(gw, 5_000, 12_000);
  // The lines a writer holds are buffers outside V8's heap: external memory, which the RSS shows among the heap's
  // garbage-collection swings (tens of MB with requests this size). Besides the writer's 16 MiB it holds the requests'
  // buffers no collection has freed yet: 32 MiB on a quiet machine, 57 MiB once under a loaded CI. The bound sits
  // between that and the 140 MB an unbounded writer would hold.
  const held = await externalMemory(`http://127.0.0.1:${gw.adminPort}`);
  assert.ok(held < 96 * 1024 * 1024, `external memory ${Math.round(held / 1024 / 1024)} MiB`);
  assert.ok(((await dropped(gw, 'stdout')) ?? 0) > 0, 'the lines the stalled stdout did not take are counted');
  // Still served, one at a time (the stall is on the log, never on requests).
  for (let i = 0; i < 5; i++) assert.equal((await client.request(`${gw.url}/after/${i}`, { timeoutMs: 3_000 })).status, 200);

  gw.signal('SIGTERM');
  // The drain finds no request; the last lines wait at most 5 s for the pipe, then the process exits.
  assert.equal(await exitWithin(gw, 15_000), 0);
  assert.equal(gw.stderr(), '', 'nothing on stderr');
});

test('a stdout whose reader left: requests served, lost lines counted, no error storm, SIGTERM exits at once', async () => {
  const gw = await gateway();
  // The reader goes: every write to stdout now fails with EPIPE.
  gw.child.stdout!.destroy();
  await load(gw, 300, 100);
  assert.ok(((await dropped(gw, 'stdout')) ?? 0) >= 300, 'every request line written since is counted as lost');
  gw.signal('SIGTERM');
  assert.equal(await exitWithin(gw, 10_000), 0);
  assert.equal(gw.stderr(), '', 'no EPIPE error or stack trace on stderr');
});
