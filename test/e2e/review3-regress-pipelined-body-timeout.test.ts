// A request body pipelined behind a long answer, through real sockets: the body waits unread while the answer before
// it is written (pipelining.ts runs one request of a connection at a time), so node's timeouts.request, counted from
// the waiting request's first byte, must not cut the connection, and the long answer with it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

let upstream: Server;
let gw: InProcessGateway;
const sockets: Socket[] = [];

before(async () => {
  upstream = createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.once('end', () => {
      if (req.url === '/shorter') {
        // Shorter than timeouts.request, but most of it.
        setTimeout(() => res.end('shorter done\n'), 1_100);
        return;
      }
      if (req.url === '/long') {
        // A long answer: its body trickles for 3.5 s, longer than timeouts.request.
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`part ${n}\n`);
          if (++n === 7) {
            clearInterval(timer);
            res.end('long done\n');
          }
        }, 500);
        return;
      }
      res.end(`${bytes}:${hash.digest('hex')}`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  gw = await startInProcess({
    server: { timeouts: { header: '1s', request: '1500ms' } },
    load_balancing: { upstreams: upstreams([port]), retries: 0 },
    admin: { enabled: false },
  });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await gw.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

test('a POST pipelined behind an answer longer than timeouts.request: both answered, the body forwarded whole', async () => {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  sockets.push(socket);
  const body = Buffer.alloc(256 * 1024, 'b');
  const digest = createHash('sha256').update(body).digest('hex');
  socket.write(`GET /long HTTP/1.1\r\nHost: gw\r\n\r\nPOST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body);
  const data = await readUntil(socket, (d) => d.toString('latin1').includes(digest), 10_000);
  const text = data.toString('latin1');
  assert.ok(text.includes('long done'), 'the long answer is whole');
  assert.ok(text.indexOf('long done') < text.indexOf(digest), 'in order');
  assert.ok(text.includes(`${body.length}:${digest}`), 'the body forwarded whole');
});

test('a waiting POST whose body stops still gets timeouts.request, counted from its turn: 408 after the long answer', async () => {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  sockets.push(socket);
  socket.write(`GET /long HTTP/1.1\r\nHost: gw\r\n\r\nPOST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${256 * 1024}\r\n\r\n`);
  socket.write(Buffer.alloc(100 * 1024, 'b'));
  const data = await readUntil(socket, (d) => /HTTP\/1\.1 408 /.test(d.toString('latin1')), 10_000);
  const text = data.toString('latin1');
  assert.ok(text.indexOf('long done') !== -1 && text.indexOf('long done') < text.indexOf('HTTP/1.1 408 '), 'the long answer whole, then the 408');
  await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
});

test('a waiting POST has the whole of timeouts.request from its turn, not what its wait left of it', async () => {
  const socket = await openSocket(gw.gateway.port);
  sockets.push(socket);
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.once('close', () => (closed = true));
  const body = Buffer.alloc(256 * 1024, 'c');
  const digest = createHash('sha256').update(body).digest('hex');
  socket.write(`GET /shorter HTTP/1.1\r\nHost: gw\r\n\r\nPOST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, 64 * 1024));
  await waitFor(() => received.includes('shorter done') || closed, 'the first answer');
  // Its turn came 1.1 s after its first byte; the rest of its body takes 1 s more (2.1 s from its first byte).
  for (let at = 64 * 1024; at < body.length && !closed; at += 64 * 1024) {
    await sleep(330);
    socket.write(body.subarray(at, at + 64 * 1024));
  }
  await waitFor(() => received.includes(digest) || closed, 'the upload answered');
  assert.ok(received.includes(`${body.length}:${digest}`), `the body forwarded whole; got ${JSON.stringify(received.slice(-300))}`);
});
