// What was wrong (found by review), with `server.workers: 2`:
// - a worker that ended otherwise than by its drain while the gateway was stopping (killed by someone else, or a fatal
//   error in it) went unlogged, and the primary exited 0: its requests still in flight had been cut, where a single
//   process exits 1 for its supervisor;
// - a worker whose primary died (`kill -9` of the main pid) is ended at once by node:cluster, and the access lines
//   still in its buffers were lost: 2 of 6 answered requests were logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnGateway } from '../helpers/gateway.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

/** An upstream answering after `?delay=ms`. */
async function slowUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const delay = Number(new URL(req.url!, 'http://x').searchParams.get('delay') ?? '0');
    setTimeout(() => res.end('ok'), delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const config = (port: number) => ({
  server: { workers: 2 },
  admin: { enabled: false },
  load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port }], health_check: { enabled: false } },
});

test('a worker killed while the gateway drains is logged, and the stop exits 1', { timeout: 60_000 }, async () => {
  const upstream = await slowUpstream();
  const gw = await spawnGateway(config(upstream.port), { group: true });
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const port = Number(new URL(gw.url).port);
    // Slow requests on both workers (fresh connections go to the workers in turn).
    const inFlight = Array.from({ length: 4 }, (_, i) =>
      rawRequest(port, `GET /wait${i}?delay=3000 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`, 10_000).catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 500));
    const [victim] = workerPids(gw.child.pid!);
    gw.signal('SIGTERM');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 'the drain begun', 5_000);
    process.kill(victim!, 'SIGKILL');
    const exit = await gw.exited;
    await Promise.all(inFlight);
    assert.equal(exit.code, 1, 'a stop that cut requests is not a clean one');
    const line = gw.logs.find((l) => l.msg === 'Worker Exited');
    assert.ok(line !== undefined, 'the worker that died is named');
    assert.equal(line.level, 50);
    assert.equal(line.pid, victim);
    assert.equal(line.signal, 'SIGKILL');
    // Each worker's own lines say which worker wrote them (the survivor's Gateway Stopped is not the gateway's).
    const started = gw.logs.filter((l) => l.msg === 'Gateway Started').map((l) => l.worker);
    assert.equal(new Set(started).size, 2, JSON.stringify(started));
    assert.ok(started.every((id) => Number.isInteger(id) && Number(id) > 0), JSON.stringify(started));
    const stopped = gw.logs.filter((l) => l.msg === 'Gateway Stopped');
    assert.equal(stopped.length, 1, 'only the survivor stopped by itself');
    assert.ok(started.includes(stopped[0]!.worker) && stopped[0]!.worker !== line.worker, JSON.stringify(stopped));
  } finally {
    await endGroup(gw);
    await upstream.close();
  }
});

test('a clean drain of both workers still exits 0 with no such line', { timeout: 60_000 }, async () => {
  const upstream = await slowUpstream();
  const gw = await spawnGateway(config(upstream.port), { group: true });
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const port = Number(new URL(gw.url).port);
    const inFlight = Array.from({ length: 2 }, (_, i) => rawRequest(port, `GET /wait${i}?delay=1000 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`, 10_000));
    await new Promise((r) => setTimeout(r, 300));
    gw.signal('SIGTERM');
    const exit = await gw.exited;
    for (const res of await Promise.all(inFlight)) assert.equal(res.status, 200);
    assert.equal(exit.code, 0);
    assert.ok(!gw.logs.some((l) => l.msg === 'Worker Exited'));
  } finally {
    await endGroup(gw);
    await upstream.close();
  }
});

test("the workers of a primary killed with SIGKILL still write the lines of the requests they answered", { timeout: 60_000 }, async () => {
  const upstream = await slowUpstream();
  const gw = await spawnGateway(config(upstream.port), { group: true });
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const port = Number(new URL(gw.url).port);
    const workers = workerPids(gw.child.pid!);
    for (let i = 0; i < 6; i++) {
      const res = await rawRequest(port, `GET /k${i} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200);
    }
    process.kill(gw.child.pid!, 'SIGKILL');
    await waitFor(() => workers.every((pid) => !alive(pid)), 'the workers ended with their primary', 10_000);
    // The workers' stdout is the pipe the test reads: what they wrote before exiting arrives.
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Request Completed').length >= 6, 'six Request Completed lines', 5_000).catch(() => undefined);
    const paths = gw.logs.filter((l) => l.msg === 'Request Completed').map((l) => l.path);
    assert.deepEqual(paths.sort(), ['/k0', '/k1', '/k2', '/k3', '/k4', '/k5']);
  } finally {
    await endGroup(gw);
    await upstream.close();
  }
});
