// An upstream whose connection fails after its 101 but before the gateway has opened the tunnel (a plugin's async
// onResponse hook runs in between): the client must not be handed a 101 into a tunnel that can never close. It gets
// 502, its connection closes, and the upstream is released (least_conn, the in-flight gauge).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

/** Resolved by the test once the upstream has reset its connection: the plugin's onResponse waits for it. */
interface Gate {
  wait: Promise<void>;
  open: () => void;
}
const GATE_KEY = '__reviewWebsocketUpstreamGone';
const globals = globalThis as unknown as Record<string, Gate | undefined>;

let upstream: Server;
let gw: InProcessGateway;
let dir: string;
const upstreamClosed: Socket[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'review-ws-gone-'));
  const plugin = join(dir, 'gated.mjs');
  writeFileSync(
    plugin,
    `export default { name: 'gated', create() { return { async onResponse() { await globalThis.${GATE_KEY}?.wait; } }; } };\n`,
  );
  // Switches, then resets the connection at once.
  upstream = createNetServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.once('close', () => upstreamClosed.push(socket));
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', () => socket.resetAndDestroy());
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
  await new Promise((resolve) => upstream.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function upstreamInFlight(): Promise<string> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return text.split('\n').find((l) => l.startsWith('portcullis_upstream_in_flight{')) ?? '';
}

test('an upstream reset while an async onResponse hook runs: 502 and a closed connection, not a 101 into a dead tunnel', { timeout: 30_000 }, async () => {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  globals[GATE_KEY] = { wait, open };
  const client = await openSocket(gw.gateway.port);
  client.on('error', () => undefined);
  try {
    const answer = responseUntilClose(client, 15_000);
    client.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await waitFor(() => upstreamClosed.length === 1, 'the upstream to reset its connection');
    // The reset reaches the gateway's socket (loopback: at once); generous slack before the hook goes on.
    await new Promise((resolve) => setTimeout(resolve, 300));
    open();
    const response = await answer;
    assert.equal(response.status, 502);
    await waitFor(async () => / 0$/.test(await upstreamInFlight()), 'the upstream to be released', 10_000);
    const completed = gw.logs.filter((l) => l.msg === 'Request Completed');
    assert.equal(completed.length, 1);
    assert.equal(completed[0]!.status, 502);
  } finally {
    client.destroy();
    open();
  }
});
