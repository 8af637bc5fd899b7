// An upstream that refuses a WebSocket handshake with a large body (a 300 KB HTML error page) had it relayed until
// the client's socket buffer filled, then never again: node takes its 'drain' wiring off a socket handed to its
// 'upgrade' event, so the response the gateway made for the handshake never heard that the client had read on.
// The client stalled at about 64 KB although it kept reading, until the send bound cut it 60 s later and logged it
// as the client's fault (CLIENT_SEND_TIMEOUT). Now the socket's drain reaches that response, and the page arrives.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const PAGE = Buffer.alloc(300 * 1024, 'x');

test('a 300 KB refusal of a WebSocket handshake reaches a client that reads it', async () => {
  const upstream = createServer((_req, res) => {
    res.writeHead(403, { 'content-type': 'text/html', 'content-length': PAGE.length });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }] },
  });
  after(() => gw.close());

  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = new Socket();
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks)); // what arrived within 10 s
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.connect(Number(new URL(gw.url).port), '127.0.0.1', () =>
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
  });
  const text = received.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 403 /);
  const body = received.subarray(text.indexOf('\r\n\r\n') + 4);
  assert.equal(body.length, PAGE.length, `the whole page arrived (${body.length} of ${PAGE.length} bytes)`);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed'), 'the request line');
  const line = gw.logs.find((l) => l.msg === 'Request Completed')!;
  assert.equal(line.status, 403);
  assert.equal(line.error, undefined, 'not logged as the client being too slow');
});
