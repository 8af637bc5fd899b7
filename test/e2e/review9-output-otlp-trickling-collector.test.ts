// What was wrong: an OTLP collector that answers, but slowly: a byte of its response every half second (an
// overloaded collector, a proxy in front of it that trickles). The exporter's timeout is node's socket idle timeout,
// which every byte resets, so an export never ended. The gateway's stop bounded its wait for the tracer (5 s), but
// the export's connection was still open: after SIGTERM the gateway drained, logged Gateway Stopped, and then the
// process never exited, for as long as the collector kept trickling.
// What is right now: a stopped gateway's process exits within a bound whatever is still open (a collector's
// connection, a log write a reader never takes), with its exit code.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const client = createClient();
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A collector that reads each export, then sends its answer's head one byte every 500 ms, never finishing it. */
async function tricklingCollector(): Promise<{ url: string; exports: () => number }> {
  const sockets = new Set<Socket>();
  let exports = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let started = false;
    socket.on('data', () => {
      if (started) return;
      started = true;
      exports++;
      const head = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-slow: ${'s'.repeat(10_000)}\r\n\r\n{}`);
      let at = 0;
      const timer = setInterval(() => {
        if (at < head.length && !socket.destroyed) socket.write(head.subarray(at, ++at));
      }, 500);
      socket.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, exports: () => exports };
}

test('a collector that trickles its answer: requests served, and SIGTERM still ends the gateway', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const collector = await tricklingCollector();
  const gw: GatewayProcess = await spawnGateway({
    load_balancing: { upstreams: upstreams([backend.port]) },
    tracing: { otlp_endpoint: collector.url },
  });
  cleanups.push(() => gw.cleanup());
  for (let i = 0; i < 20; i++) assert.equal((await client.request(`${gw.url}/traced/${i}`, { timeoutMs: 3_000 })).status, 200);
  // The spans go in the next batch (every second): the export starts and never ends.
  await waitFor(() => collector.exports() > 0, 'an export to reach the collector', 5_000);
  assert.equal((await client.request(`${gw.url}/during`, { timeoutMs: 3_000 })).status, 200);

  gw.signal('SIGTERM');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopped'), 'the gateway to stop', 10_000);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 15_000)));
  const code = await Promise.race([gw.exited.then((e) => e.code), bound]);
  clearTimeout(timer);
  assert.equal(code, 0);
});
