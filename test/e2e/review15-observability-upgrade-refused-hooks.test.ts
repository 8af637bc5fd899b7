// A WebSocket request the upstream answered 101 but that could not be tunnelled (the 101 switched to another
// protocol, or the upstream's connection closed before the splice) is answered 502 by the gateway. That answer's
// line was written as the attempt ended, before the 502's own onResponse hooks had run and before it was sent: the
// access log's duration_ms was the time to the upstream's 101 (half the client's wait behind a 300 ms hook), and the
// route's onLog ran before its onResponse. Now the line follows the answer, as for every other request.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-upgrade-hooks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Logs each hook's moment through the plugin logger, so the order shows in the gateway's own lines. */
const plugin = join(dir, 'slow-response.mjs');
writeFileSync(
  plugin,
  `import { setTimeout as sleep } from 'node:timers/promises';
   export default { name: 'slow-response', create(_c, api) { return {
     async onResponse(ctx) { await sleep(300); api.logger.info({ hook: 'onResponse', status: ctx.status }, 'Hook Ran'); },
     onLog() { api.logger.info({ hook: 'onLog' }, 'Hook Ran'); },
   }; } };`,
);

/** An upstream that answers every request with a 101 to h2c: a WebSocket request it cannot be. */
async function wrongSwitch(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends a WebSocket handshake and reads the answer to the end of the connection. */
function handshake(port: number): Promise<{ head: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = new Socket();
    socket.on('error', reject);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve({ head: text.split('\r\n')[0]!, ms: performance.now() - started }));
    socket.connect(port, '127.0.0.1', () =>
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
  });
}

test("a 101 that cannot be tunnelled: the 502's line follows its onResponse hook, with the hook's time in it", async () => {
  const upstream = await wrongSwitch();
  after(() => upstream.close());
  const gw = await startInProcess({
    services: { ws: { upstreams: [{ name: 'u', address: '127.0.0.1', port: upstream.port }], retries: 0 } },
    plugins: [{ name: 'slow', module: plugin }],
    routes: [{ name: 'ws', match: { path_prefix: '/' }, service: 'ws', plugins: ['slow'] }],
  });
  after(() => gw.close());
  const port = Number(new URL(gw.url).port);
  const answer = await handshake(port);
  assert.match(answer.head, /^HTTP\/1\.1 502 /);
  assert.ok(answer.ms >= 300, `the client waited for the hook (${answer.ms.toFixed(0)} ms)`);
  await waitFor('the request line', () => gw.logs.some((l) => l.msg === 'Request Completed'), 5_000);
  await waitFor('onLog', () => gw.logs.some((l) => l.hook === 'onLog'), 5_000);
  const order = gw.logs.filter((l) => l.msg === 'Hook Ran' || l.msg === 'Request Completed').map((l) => (l.msg === 'Hook Ran' ? `${String(l.hook)}${l.status === undefined ? '' : ` ${String(l.status)}`}` : 'line'));
  // onResponse runs on the upstream's 101, then on the gateway's 502 that replaces it.
  assert.deepEqual(order, ['onResponse 101', 'onResponse 502', 'line', 'onLog'], 'the hooks ran, then the request was logged, then onLog');
  const completed = gw.logs.find((l) => l.msg === 'Request Completed')!;
  assert.equal(completed.status, 502);
  assert.ok(Number(completed.duration_ms) >= 300, `duration_ms ${String(completed.duration_ms)} counts the hook's 300 ms`);
});
