// HTTP/1.1 pipelining on the proxy port, through real sockets: one connection's pipelined requests go upstream one
// at a time (as nginx, HAProxy and Envoy serve them), so a client cannot take a whole upstream pool through one
// connection; a body waiting behind a slow request is still forwarded whole; a connection with more than
// MAX_WAITING_REQUESTS waiting is closed and none of them goes upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { MAX_WAITING_REQUESTS } from '../../src/listeners/pipelining.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

/** An upstream that records how many requests it answers at once: `/slow` answers after 100 ms, `/upload` hashes the body. */
let upstream: Server;
let active = 0;
let maxActive = 0;
let received = 0;
let gw: InProcessGateway;
const sockets: Socket[] = [];

before(async () => {
  upstream = createServer((req, res) => {
    received++;
    active++;
    maxActive = Math.max(maxActive, active);
    res.once('close', () => active--);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.once('end', () => {
      const body = req.url?.startsWith('/upload') ? `${bytes}:${hash.digest('hex')}` : `ok ${req.url}`;
      setTimeout(() => res.end(body), req.url?.startsWith('/slow') ? 100 : 0);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  // A small pool and queue: what one connection could take before is all of it.
  gw = await startInProcess({
    load_balancing: { upstreams: upstreams([port]), retries: 0, connections_per_upstream: 4, queue_limit: 4 },
    admin: { enabled: false },
  });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await gw.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

async function connection(): Promise<Socket> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  sockets.push(socket);
  return socket;
}

const count = (data: Buffer, text: string): number => data.toString('latin1').split(text).length - 1;

test('pipelined requests go upstream one at a time: another client is served meanwhile, and each gets its answer in order', async () => {
  maxActive = 0;
  const socket = await connection();
  const n = 12;
  let batch = '';
  for (let i = 0; i < n; i++) batch += `GET /slow/${i} HTTP/1.1\r\nHost: gw\r\n\r\n`;
  socket.write(batch);
  await waitFor(() => active > 0, 'the first pipelined request at the upstream');
  // Before, the twelve took the pool's 4 connections and its queue of 4, and this answered 503 upstream_busy.
  const other = await fetch(`${gw.url}/other`);
  assert.equal(other.status, 200);
  assert.equal(await other.text(), 'ok /other');
  const data = await readUntil(socket, (d) => count(d, 'ok /slow/') === n, 10_000);
  const text = data.toString('latin1');
  for (let i = 0; i < n; i++) assert.ok(text.includes(`ok /slow/${i}`), `answer ${i}`);
  const order = [...text.matchAll(/ok \/slow\/(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(order, [...Array(n).keys()]);
  assert.ok(maxActive <= 2, `the upstream held ${maxActive} requests at once (the connection's one and the other client's)`);
});

test('a body pipelined behind a slow request is forwarded whole when its turn comes', async () => {
  const socket = await connection();
  const body = Buffer.alloc(3 * 1024 * 1024, 'pipelined-body-');
  const expected = `${body.length}:${createHash('sha256').update(body).digest('hex')}`;
  socket.write(`GET /slow/first HTTP/1.1\r\nHost: gw\r\n\r\nPOST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body);
  socket.write('GET /after HTTP/1.1\r\nHost: gw\r\n\r\n');
  const data = await readUntil(socket, (d) => d.includes('ok /after'), 10_000);
  assert.ok(data.includes('ok /slow/first'));
  assert.ok(data.includes(expected), `the upload's answer: ${data.toString('latin1').slice(0, 600)}`);
});

test(`more than ${MAX_WAITING_REQUESTS} requests waiting on one connection: it is closed, and they never reach the upstream`, async () => {
  const socket = await connection();
  const before = received;
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 5_000).unref();
  });
  socket.write(`GET /slow/head HTTP/1.1\r\nHost: gw\r\n\r\n`.repeat(MAX_WAITING_REQUESTS + 50));
  assert.ok(await closed, 'the connection was closed');
  // Only the one that had the connection may have been sent (and was aborted with it).
  assert.ok(received - before <= 1, `${received - before} requests reached the upstream`);
  // The gateway serves on.
  assert.equal((await fetch(`${gw.url}/still`)).status, 200);
});
