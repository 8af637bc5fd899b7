// What was wrong: `logging.format: pretty` (or auto on a terminal) with a stdout that takes nothing: a terminal
// paused with Ctrl-S, a pipe nobody reads. pino-pretty runs in a worker thread, which stops taking lines while its
// stdout does; pino's transport stream (thread-stream) kept every line the gateway wrote after that, without limit
// (up to V8's longest string, 512 MiB, and then it blocked the event loop). The gateway's memory grew with every
// request for as long as the stall lasted.
// What is right now: once the transport reports its worker behind, lines are dropped and counted in
// portcullis_log_lines_dropped_total{destination="stdout"} until it catches up, as the JSON writer drops past its
// 16 MiB; memory stays bounded, requests are served, and a stop still exits.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startPrettyGateway } from '../helpers/pretty-gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';

const client = createClient({ connections: 16 });
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** nodejs_external_memory_bytes (buffers outside V8's heap) of the gateway whose admin port is at `admin`. */
async function externalMemory(admin: string): Promise<number> {
  const text = (await client.request(`${admin}/metrics`)).text;
  return sampleValue(text, 'nodejs_external_memory_bytes') ?? Number.NaN;
}

test('pretty logs to a stdout nobody reads: memory bounded, lines dropped and counted, requests served, SIGTERM exits', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  // Read (and thrown away) until the stall begins.
  const gw = await startPrettyGateway(backend.port, { admin: true, onStdout: () => undefined });
  cleanups.push(gw.stop);
  const { child, exited, port, adminPort } = gw;

  const pad = 'p'.repeat(12_000);
  const load = async (count: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const i = next++;
          assert.equal((await client.request(`http://127.0.0.1:${port}/load/${i}/${pad}`)).status, 200);
        }
      }),
    );
  };
  await load(200);
  // From here on nobody reads the gateway's stdout. Two access lines of 12 KB a request: the first 1,000 requests
  // fill the pipe and the transport's 4 MiB; the next 2,500 write some 60 MB more, which a transport that keeps
  // every line holds too.
  child.stdout.pause();
  await load(1_000);
  await load(2_500);
  // The lines a transport holds are buffers outside V8's heap: external memory, which the RSS shows among the heap's
  // garbage-collection swings (tens of MB with requests this size).
  const held = await externalMemory(`http://127.0.0.1:${adminPort}`);
  assert.ok(held < 48 * 1024 * 1024, `external memory ${Math.round(held / 1024 / 1024)} MiB`);
  const metrics = (await client.request(`http://127.0.0.1:${adminPort}/metrics`)).text;
  assert.ok((sampleValue(metrics, 'portcullis_log_lines_dropped_total', { destination: 'stdout' }) ?? 0) > 0, 'dropped lines counted');
  assert.equal((await client.request(`http://127.0.0.1:${port}/after`, { timeoutMs: 3_000 })).status, 200);

  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 15_000)));
  const code = await Promise.race([exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  assert.equal(code, 0, gw.stderr());
});
