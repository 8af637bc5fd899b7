// An HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is
// received in an HTTP/1.0 request"): the upstream is asked for no protocol switch, the request is served as a plain
// one, and its connection closes after the answer. Before, it was tunnelled as an HTTP/1.1 WebSocket handshake.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

let upstream: Server;
let gw: InProcessGateway;
/** Every request head the upstream read. */
const heads: string[] = [];

before(async () => {
  // Switches whenever asked for websocket; otherwise answers 200 and keeps the connection.
  upstream = createNetServer((socket: Socket) => {
    socket.on('error', () => undefined);
    let pending = '';
    let switched = false;
    socket.on('data', (chunk: Buffer) => {
      if (switched) return;
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1 && !switched; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        heads.push(head);
        if (/^upgrade:\s*websocket\s*$/im.test(head)) {
          switched = true;
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        } else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain');
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] } });
});

after(async () => {
  await gw.close();
  await new Promise((resolve) => upstream.close(resolve));
});

test('an HTTP/1.0 Upgrade: websocket is served as a plain request, never switched', async () => {
  const mark = heads.length;
  const response = await rawRequest(gw.gateway.port, 'GET /ws HTTP/1.0\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  assert.equal(response.status, 200);
  assert.equal(response.body, 'plain');
  const sent = heads.slice(mark);
  assert.equal(sent.length, 1);
  assert.doesNotMatch(sent[0]!, /^upgrade:/im, 'the upstream is asked for no switch');
});

test('the same request over HTTP/1.1 is still switched', async () => {
  const response = await rawRequest(gw.gateway.port, 'GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 2_000).catch((err: Error) => err);
  // The tunnel stays open (the upstream never closes it): rawRequest gives up waiting for the close.
  assert.ok(response instanceof Error);
  assert.match(response.message, /HTTP\/1\.1 101 Switching Protocols/);
});
