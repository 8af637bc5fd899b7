// An upstream's 101 that carries a Content-Length: the field is not relayed (RFC 9110 §8.6: a server MUST NOT send
// Content-Length in a 1xx response), so a client never reads the first bytes of the tunnel as a response body. The
// bytes behind the 101 are the new protocol's and still reach the client, in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, readUntil } from '../helpers/raw.js';

let upstream: Server;
let gw: InProcessGateway;
const upstreamSockets = new Set<Socket>();

before(async () => {
  upstream = createNetServer((socket: Socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nframe');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] } });
});

after(async () => {
  await gw.close();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise((resolve) => upstream.close(resolve));
});

test('a 101 with a Content-Length is relayed without it; the bytes behind it follow as tunnel data', async () => {
  const client = await openSocket(gw.gateway.port);
  client.on('error', () => undefined);
  try {
    client.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    const data = (await readUntil(client, (d) => d.includes('frame'))).toString('latin1');
    const split = data.indexOf('\r\n\r\n');
    const head = parseHead(data.slice(0, split));
    assert.equal(head.status, 101);
    assert.equal(head.headers['content-length'], undefined);
    assert.equal(data.slice(split + 4), 'frame');
  } finally {
    client.destroy();
  }
});
