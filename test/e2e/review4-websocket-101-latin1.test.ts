// The 101 the gateway writes by hand carries header values byte for byte, as node writes every other response head
// (latin1): an upstream's obs-text byte (RFC 9110 §5.5, e.g. 0xE9 in a Set-Cookie value on the handshake) or a
// route's response header with a Latin-1 character went out UTF-8 encoded (0xC3 0xA9), a different value than the
// same header on any other response.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';

let upstream: Server;
let gw: InProcessGateway;
const held: Socket[] = [];

before(async () => {
  // Answers /ws with a 101, anything else with a 200, both with X-Name: caf<0xE9>.
  upstream = createServer((socket) => {
    socket.on('error', () => undefined);
    held.push(socket);
    socket.once('data', (data: Buffer) => {
      const path = data.toString('latin1').split(' ')[1];
      const status = path === '/ws' ? '101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade' : '200 OK\r\nContent-Length: 0';
      socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\nX-Name: caf`, 'latin1'), Buffer.from([0xe9]), Buffer.from('\r\n\r\n')]));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as { port: number }).port }] },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default', response_headers: { set: { 'x-site': 'Café' } } }],
  });
});

after(async () => {
  await gw?.close();
  for (const socket of held) socket.destroy();
  await new Promise((resolve) => upstream?.close(resolve));
});

/** The raw response head the client gets for an Upgrade to `path`. */
async function headFor(path: string): Promise<Buffer> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  try {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'));
    return data.subarray(0, data.indexOf('\r\n\r\n') + 2);
  } finally {
    socket.destroy();
  }
}

/** The bytes of header `name`'s value in a raw head. */
function valueBytes(head: Buffer, name: string): Buffer {
  const start = head.indexOf(`${name}: `);
  assert.notEqual(start, -1, `${name} in ${head.toString('latin1')}`);
  return head.subarray(start + name.length + 2, head.indexOf('\r\n', start));
}

test('the 101 relays an upstream header value and a route header value with the bytes any other response has', async () => {
  const switched = await headFor('/ws');
  const plain = await headFor('/plain');
  assert.match(switched.toString('latin1'), /^HTTP\/1\.1 101 /);
  assert.match(plain.toString('latin1'), /^HTTP\/1\.1 200 /);
  assert.deepEqual(valueBytes(plain, 'x-name'), Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'node writes it as it came');
  assert.deepEqual(valueBytes(switched, 'x-name'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  assert.deepEqual(valueBytes(plain, 'x-site'), Buffer.from('Café', 'latin1'));
  assert.deepEqual(valueBytes(switched, 'x-site'), Buffer.from('Café', 'latin1'));
});
