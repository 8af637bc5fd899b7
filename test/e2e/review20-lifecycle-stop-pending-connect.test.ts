// A stop ends within shutdown_drain (plus the pools' short close) although a connection to an upstream is still
// being opened: undici's graceful close of the pools waited for that connect, so an upstream that never answers its
// SYN held the stop until upstream_connect ran out (89 s with it off), far past shutdown_drain, and a cluster's
// primary killed its workers for it; and undici's destroy() leaves such a connect to run its course, so the pools
// end the sockets they are still opening themselves. The upstream that never answers is a listener whose process is stopped
// (SIGSTOP) and whose accept queue is full: the kernel then drops every new SYN.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Socket as NetSocket } from 'node:net';
import { spawnGateway, startInProcess, type GatewayProcess } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const listeners: ChildProcess[] = [];
const fillers: Socket[] = [];
let gw: GatewayProcess | undefined;

after(async () => {
  for (const socket of fillers) socket.destroy();
  for (const listener of listeners) listener.kill('SIGKILL');
  await gw?.cleanup();
});

/** A loopback port whose SYNs go unanswered: a stopped process's listener, its accept queue (backlog 1) full. */
async function silentPort(): Promise<number> {
  const script = "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));";
  const listener = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  listeners.push(listener);
  const [line] = (await once(listener.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  listener.kill('SIGSTOP');
  // The kernel completes handshakes into the accept queue by itself: fill it, then it drops SYNs.
  for (let i = 0; i < 4; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return port;
}

test('a stop with a connect to a silent upstream still pending ends within the drain bound, exit 0', { timeout: 60_000 }, async () => {
  const port = await silentPort();
  gw = await spawnGateway({
    server: { timeouts: { shutdown_drain: '1s' } },
    services: { silent: { retries: 0, upstreams: [{ name: 'silent', address: '127.0.0.1', port }], timeouts: { upstream_connect: '40s' } } },
    routes: [{ name: 'silent', match: { path_prefix: '/' }, service: 'silent' }],
  });
  const client = await openSocket(gw.port);
  client.on('error', () => undefined);
  client.write('GET /waits HTTP/1.1\r\nHost: a.test\r\n\r\n');
  await waitFor(() => gw!.logs.some((l) => l.msg === 'Select Upstream'), 'the request to pick the silent upstream');
  await new Promise((resolve) => setTimeout(resolve, 300)); // its connect under way
  const stoppedAt = Date.now();
  gw.signal('SIGTERM');
  const exit = await gw.exited;
  const seconds = (Date.now() - stoppedAt) / 1000;
  client.destroy();
  assert.equal(exit.code, 0, gw.stderr());
  // The drain (1 s), the pools' graceful close (1 s), then their destroy, the connect in progress included: the
  // process ends by itself, not by the 6 s bound run-gateway.ts gives a stopped process whatever stays open.
  assert.ok(seconds < 5, `the stop took ${seconds.toFixed(1)} s (shutdown_drain 1 s)`);
  const stopped = gw.logs.findIndex((l) => l.msg === 'Gateway Stopped');
  assert.ok(stopped >= 0);
  // The request the stop cut is logged as cut by the stop, before the stop's last line, not as a pool's failure.
  const cut = gw.logs.findIndex((l) => l.msg === 'Request Completed' && l.path === '/waits');
  assert.ok(cut >= 0 && cut < stopped, 'the cut request logged before Gateway Stopped');
  assert.equal(gw.logs[cut]!.status, 499);
  assert.equal(gw.logs[cut]!.error, 'SHUTTING_DOWN');
});

test('a closed gateway leaves no connection to an upstream still being opened (an embedding process can end)', { timeout: 30_000 }, async () => {
  const port = await silentPort();
  const embedded = await startInProcess({
    server: { timeouts: { shutdown_drain: '1s' } },
    admin: { enabled: false },
    services: { silent: { retries: 0, upstreams: [{ name: 'silent', address: '127.0.0.1', port }], timeouts: { upstream_connect: '40s' } } },
    routes: [{ name: 'silent', match: { path_prefix: '/' }, service: 'silent' }],
  });
  const connecting = (): number =>
    (process as unknown as { _getActiveHandles(): unknown[] })
      ._getActiveHandles()
      .filter((h) => h instanceof NetSocket && h.connecting && !fillers.includes(h)).length; // the fillers past the queue too
  const client = await openSocket(embedded.gateway.port);
  client.on('error', () => undefined);
  try {
    client.write('GET /waits HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await waitFor(() => connecting() > 0, 'the gateway to be opening its connection to the silent upstream');
    await embedded.close();
    // undici's destroy() leaves a connect in progress to run its course (40 s here), holding the process.
    await waitFor(() => connecting() === 0, 'no connection still being opened', 2_000);
  } finally {
    client.destroy();
  }
});
