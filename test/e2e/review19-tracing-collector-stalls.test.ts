// Collectors that answer, but not as they should. (1) One that sends 200 and then trickles its body: the exporter's
// timeout was node's socket idle timeout, which each byte restarts, so the export stayed open as long as the
// collector went on; once 30 such exports held the exporter's concurrent slots, no span was sent again, even to a
// collector answering at once, and those batches were never counted. (2) One that answers within the timeout but
// slower than spans are made: the queue overflowed and 98 % of spans were dropped with no line at all. (3) Trace Export
// Failed said only "Error" or "OTLPExporterError", whatever the failure: refused, timed out, or an HTTP status.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closedPort, startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient({ connections: 16 });
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

/** A collector whose answer `mode` decides, switched at run time; counts the exports it was sent and the ones closed. */
async function collector(): Promise<{ url: string; mode: 'trickle' | 'ok' | 'slow' | '400'; exports: number; closedUnanswered: number; close(): Promise<void> }> {
  const state = { mode: 'ok' as 'trickle' | 'ok' | 'slow' | '400', exports: 0, closedUnanswered: 0 };
  const trickling = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      state.exports++;
      if (state.mode === 'ok') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (state.mode === '400') return void res.writeHead(400, { 'content-type': 'text/plain' }).end('a collector message');
      if (state.mode === 'slow') return void setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 3_000);
      // 200 and its head at once, then a byte every 500 ms for ever: never idle for the exporter's 5 s.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      const timer = setInterval(() => res.write(' '), 500);
      trickling.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        trickling.delete(timer);
        if (!res.writableFinished) state.closedUnanswered++;
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of trickling) clearInterval(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function tracingGateway(endpoint: string) {
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'one', address: '127.0.0.1', port: backend.port }] },
    admin: { enabled: true },
    tracing: { otlp_endpoint: endpoint, sample_ratio: 1 },
  });
  after(() => gw.close());
  return gw;
}

const dropped = async (adminUrl: string) => sampleValue((await client.request(`${adminUrl}/metrics`)).text, 'portcullis_tracing_spans_dropped_total') ?? 0;

test('a collector that trickles its answer has its export cut at the 5 s deadline, counted, and the next export goes out', async () => {
  const otlp = await collector();
  after(() => otlp.close());
  otlp.mode = 'trickle';
  const gw = await tracingGateway(otlp.url);
  assert.equal((await client.request(`${gw.url}/one`)).status, 200);
  await waitFor(() => otlp.exports >= 1, 'the first export', 5_000);
  otlp.mode = 'ok';
  // Cut by the gateway at its deadline (5 s from the request, and a margin for a loaded machine), not held while the
  // collector trickles on.
  await waitFor(() => otlp.closedUnanswered >= 1, 'the trickling export closed by the gateway', 9_000, 100);
  await waitFor(async () => (await dropped(gw.adminUrl!)) >= 2, 'its two spans counted as dropped', 5_000, 100);
  const failed = gw.logs.find((l) => l.msg === 'Trace Export Failed');
  assert.equal(failed?.code, 'EXPORT_DEADLINE', JSON.stringify(failed));
  // The collector answers at once now: the next batch is delivered.
  const delivered = otlp.exports;
  assert.equal((await client.request(`${gw.url}/two`)).status, 200);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Trace Export Recovered'), 'Trace Export Recovered', 10_000, 100);
  assert.ok(otlp.exports > delivered);
});

test('a collector slower than spans are made: the dropped spans are logged (Trace Queue Full), not only counted', async () => {
  const otlp = await collector();
  after(() => otlp.close());
  otlp.mode = 'slow';
  const gw = await tracingGateway(otlp.url);
  // Two spans a request: 1,600 requests make 3,200 spans while one export of 512 waits 3 s on the collector, more
  // than the queue's 2,048.
  for (let round = 0; round < 100; round++) {
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => client.request(`${gw.url}/r/${round}/${i}`).then((r) => r.status)));
    assert.deepEqual(new Set(statuses), new Set([200]));
  }
  // Written a second after the first drop, with the burst's count (not its first span's), then not again within
  // the minute however many more are dropped.
  await waitFor(() => gw.logs.some((l) => l.msg === 'Trace Queue Full'), 'Trace Queue Full', 5_000, 100);
  const full = gw.logs.filter((l) => l.msg === 'Trace Queue Full');
  assert.equal(full.length, 1, 'logged once, not per span');
  assert.equal(full[0]!.queue_limit, 2048);
  assert.equal(full[0]!.level, 40);
  assert.ok(Number(full[0]!.dropped) > 1, `the line counts the burst: ${JSON.stringify(full[0])}`);
  assert.ok((await dropped(gw.adminUrl!)) >= Number(full[0]!.dropped));
  assert.equal(gw.logs.filter((l) => l.msg === 'Trace Export Failed').length, 0, 'no export failed: it is the queue');
});

test('Trace Export Failed says what failed: the refusal\'s code, or the collector\'s HTTP status, never its words', async () => {
  const refused = await tracingGateway(`http://127.0.0.1:${await closedPort()}/v1/traces`);
  assert.equal((await client.request(`${refused.url}/one`)).status, 200);
  await waitFor(() => refused.logs.some((l) => l.msg === 'Trace Export Failed'), 'the refused export', 15_000, 100);
  assert.equal(refused.logs.find((l) => l.msg === 'Trace Export Failed')?.code, 'ECONNREFUSED');

  const otlp = await collector();
  after(() => otlp.close());
  otlp.mode = '400';
  const answered = await tracingGateway(otlp.url);
  assert.equal((await client.request(`${answered.url}/one`)).status, 200);
  await waitFor(() => answered.logs.some((l) => l.msg === 'Trace Export Failed'), 'the refused export', 10_000, 100);
  const line = answered.logs.find((l) => l.msg === 'Trace Export Failed')!;
  assert.equal(line.status, 400);
  assert.equal(line.cause, 'OTLPExporterError');
  assert.ok(!JSON.stringify(line).includes('a collector message'));
});
