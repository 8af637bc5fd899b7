// A WebSocket client on the TLS listener that half-closes (its Close frame, then FIN) still gets what the upstream
// sends after that FIN, its Close frame in return included, as on the cleartext listener
// (websocket-half-close.test.ts, review-websocket-early-fin.test.ts). node's TLS servers (https, and http2's with
// allowHTTP1) are not allowHalfOpen, unlike node:http's: the gateway's side of the connection was ended as soon as the
// client's FIN was read, the upstream's answer lost, and a FIN sent before the 101 ended the handshake as a 499.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { readUntil } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let upstream: Server;
const upstreamSockets = new Set<Socket>();
/** Upgrade requests the upstream holds unanswered (path /late): answered when a test says so. */
const waiting: Array<() => void> = [];
const gateways: InProcessGateway[] = [];

before(async () => {
  ca = createTestCa('WebSocket Half Close CA', pki.path);
  upstream = createServer();
  upstream.on('upgrade', (req, socket: Socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => socket.write(`echo:${d}`));
    socket.on('end', () => socket.end('upstream-close-frame'));
    const switched = (): void => void socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (req.url === '/late') waiting.push(switched);
    else switched();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  for (const gw of gateways) await gw.close();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise((resolve) => upstream.close(resolve));
  pki.remove();
});

async function tlsGateway(http2: boolean): Promise<InProcessGateway> {
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const port = (upstream.address() as { port: number }).port;
  const gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2 } },
    load_balancing: { upstreams: [{ name: 'ws', address: '127.0.0.1', port }] },
  });
  gateways.push(gw);
  return gw;
}

/** A TLS client over HTTP/1.1 that keeps reading after its own FIN. */
async function client(port: number): Promise<TLSSocket> {
  const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'a.test', ca: ca.ca, ALPNProtocols: ['http/1.1'] });
  socket.allowHalfOpen = true;
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  return socket;
}

const UPGRADE = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`;

for (const http2 of [true, false]) {
  const listener = http2 ? 'h2 + http/1.1 TLS listener' : 'https listener';
  test(`${listener}: a client's FIN after the 101 still lets the upstream's answer through`, { timeout: 20_000 }, async () => {
    const gw = await tlsGateway(http2);
    const socket = await client(gw.gateway.port);
    try {
      socket.write(UPGRADE('/ws'));
      const head = await readUntil(socket, (d) => d.includes('\r\n\r\n'));
      assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
      const answer = readUntil(socket, (d) => d.includes('upstream-close-frame'));
      socket.end('client-close-frame');
      const seen = (await answer).toString('latin1');
      assert.match(seen, /echo:client-close-frame/);
    } finally {
      socket.destroy();
    }
  });

  test(`${listener}: a FIN before the 101 is passed on, and the handshake goes on`, { timeout: 20_000 }, async () => {
    const gw = await tlsGateway(http2);
    const socket = await client(gw.gateway.port);
    try {
      socket.write(UPGRADE('/late'));
      socket.end('hello');
      await waitFor(() => waiting.length === 1, 'the upgrade to reach the upstream');
      await sleep(300); // the FIN has reached the gateway
      waiting.shift()!();
      const seen = (await readUntil(socket, (d) => d.includes('upstream-close-frame'))).toString('latin1');
      assert.match(seen, /^HTTP\/1\.1 101 /);
      assert.match(seen, /echo:hello/);
    } finally {
      socket.destroy();
    }
  });
}
