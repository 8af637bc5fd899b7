// A client that resets its connection after the upstream's 101 but before the gateway has opened the tunnel (a
// plugin's async onResponse hook runs in between): the upstream connection is closed and released, and the request
// is logged once, as 499. Before, nothing ever closed that upstream connection: one leaked per reset, at the client's
// will, with the upstream counted in flight (least_conn, the gauges) and the request never logged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

/** The plugin's onResponse waits on this until the test opens it. */
interface Gate {
  readonly wait: Promise<void>;
}
const GATE_KEY = '__reviewWebsocketClientGone';
const globals = globalThis as unknown as Record<string, Gate | undefined>;

let upstream: Server;
let gw: InProcessGateway;
let dir: string;
/** Upstream connections that switched, and those of them that closed. */
const switched: Socket[] = [];
const closed: Socket[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'review-ws-client-gone-'));
  const plugin = join(dir, 'gated.mjs');
  writeFileSync(
    plugin,
    `export default { name: 'gated', create() { return { async onResponse() { await globalThis.${GATE_KEY}?.wait; } }; } };\n`,
  );
  // A WebSocket server that switches and then waits for the client (it never closes a connection itself).
  upstream = createNetServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.once('close', () => closed.push(socket));
    socket.once('data', () => {
      switched.push(socket);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({
    plugins: [{ name: 'gated', module: plugin }],
    middleware: { plugins: ['gated'] },
    load_balancing: { strategy: 'least_conn', upstreams: [{ name: 'u', address: '127.0.0.1', port }] },
  });
});

after(async () => {
  delete globals[GATE_KEY];
  await gw.close();
  for (const socket of switched) socket.destroy();
  await new Promise((resolve) => upstream.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function metric(name: string): Promise<string | undefined> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return text.split('\n').find((l) => l.startsWith(name));
}

test('a client reset while an async onResponse hook runs on the 101: the upstream connection is closed and released, the request logged 499', { timeout: 30_000 }, async () => {
  let open!: () => void;
  globals[GATE_KEY] = { wait: new Promise<void>((resolve) => (open = resolve)) };
  const client = await openSocket(gw.gateway.port);
  client.on('error', () => undefined);
  try {
    client.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await waitFor(() => switched.length === 1, 'the upstream to switch');
    client.resetAndDestroy();
    // The gateway sees the reset: its client count drops back to zero.
    await waitFor(async () => (await metric('portcullis_client_connections')) === 'portcullis_client_connections 0', 'the gateway to see the reset');
    open();
    await waitFor(() => closed.length === 1, 'the upstream connection to be closed', 10_000);
    await waitFor(async () => / 0$/.test((await metric('portcullis_upstream_in_flight{')) ?? ''), 'the upstream to be released', 10_000);
    await waitFor(async () => (await metric('portcullis_requests_in_flight')) === 'portcullis_requests_in_flight 0', 'the request to be logged', 10_000);
    const completed = gw.logs.filter((l) => l.msg === 'Request Completed');
    assert.equal(completed.length, 1);
    assert.equal(completed[0]!.status, 499);
    assert.equal(gw.logs.filter((l) => l.msg === 'Tunnel Closed').length, 0, 'no tunnel was opened');
  } finally {
    client.destroy();
    open();
  }
});
