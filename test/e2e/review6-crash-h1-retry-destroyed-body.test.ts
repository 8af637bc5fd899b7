// What was wrong: an HTTP/1.1 upload whose body had not begun to arrive, sent to an HTTP/2 upstream whose session
// closed on it, with a retry left, took the gateway down ("Uncaught Exception" TypeError in lingering-close.ts, drain,
// exit 1) on the first request. The first attempt failed with its body unread, so it was retried; undici then
// destroyed that body (its HTTP/2 abort destroys the body after failing the request), and its destroy detaches a
// node request from its socket (socket = null). The retry failed on the destroyed body, and the 502 that followed
// set the connection to linger, reading req.socket: the TypeError was thrown into undici, which re-emitted it as an
// 'error' on its Client, with no listener.
// What is right now: the 502 reaches the client on that same connection, and the gateway keeps serving.
// Real sockets: a spawned cleartext gateway, an h2c upstream that destroys each session as a stream arrives.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { sessionKillingUpstream } from '../helpers/session-killing-upstream.js';
import { logsReadSoFar, spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { openSocket, parseHead, readUntil } from '../helpers/raw.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A POST announcing 1000 body bytes and sending none; resolves with the answer's status (-1: none came). */
async function uploadNotBegun(gw: GatewayProcess, path: string): Promise<number> {
  const socket = await openSocket(gw.port).catch(() => undefined);
  if (socket === undefined) return -1;
  socket.on('error', () => {});
  try {
    socket.write(`POST ${path} HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n`);
    const head = await readUntil(socket, (data) => data.includes('\r\n\r\n'), 10_000).catch(() => undefined);
    return head === undefined ? -1 : parseHead(head.toString('latin1').split('\r\n\r\n')[0]!).status;
  } finally {
    socket.destroy();
  }
}

test('h1 upload not begun, its h2 upstream session closed, retried: answered 502, and the gateway lives', { timeout: 60_000 }, async () => {
  const upstream = await sessionKillingUpstream(cleanups);
  const gw = await spawnGateway({
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false },
    logging: { format: 'json', level: 'info' },
    services: {
      api: { http2: true, retries: 1, health_check: { enabled: false }, upstreams: [{ name: 'h2', address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }] },
    },
    routes: [{ name: 'api', match: { path_prefix: '/api' }, service: 'api' }],
  });
  cleanups.push(() => gw.cleanup());
  let exited = false;
  void gw.exited.then(() => (exited = true));
  const statuses: number[] = [];
  for (let i = 0; i < 5 && !exited; i++) statuses.push(await uploadNotBegun(gw, `/api/up${i}`));
  // An Uncaught Exception line is written with the answer it follows, and may still be on its way: read all first.
  await logsReadSoFar(gw);
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Uncaught Exception'), [], 'no exception went uncaught');
  assert.equal(exited, false, 'the gateway is still running');
  assert.deepEqual(statuses, [502, 502, 502, 502, 502]);
});
