// A large answer handed over whole on an HTTP/1.1 connection (a plugin's respond(): the gateway holds all of it) to a
// client that never reads it. server.timeouts.request_body_chunk is the send bound of every answer (README: the
// longest a client may take no response bytes); over HTTP/2 an answer handed over whole was already cut by it
// (review7-h2-window-stall), but over HTTP/1.1, cleartext or TLS, node held the answer's bytes and the connection
// (and its max_connections_per_client slot) for as long as the client kept it open: a client that resumed reading
// after any pause still got the whole answer. Now the connection is closed once the kernel has taken none of its
// bytes for that bound, logged CLIENT_SEND_TIMEOUT; a client that reads steadily, however slowly, gets all of it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SIZED = new URL('../plugins/fixtures/sized-answer.mjs', import.meta.url).pathname;
/** Far more than loopback's socket buffers hold (a few MB each way): most of it can only sit in the gateway. */
const ANSWER_BYTES = 64 * 1024 * 1024;
/** The send bound of the test gateways; every wait below is several times it. */
const SEND_BOUND_MS = 1_000;

function gatewayConfig(backendPort: number, tls?: { cert_file: string; key_file: string }): Record<string, unknown> {
  return {
    server: { ...(tls === undefined ? {} : { tls }), timeouts: { request_body_chunk: `${SEND_BOUND_MS}ms`, idle: '30s' } },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backendPort }] } },
    routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api' }],
    plugins: [{ name: 'sized', module: SIZED }],
    middleware: { plugins: ['sized'] },
  };
}

function openPlain(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function openTls(port: number, ca: Buffer): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] }, () => resolve(socket));
    socket.once('error', reject);
  });
}

const request = (path: string, bytes = ANSWER_BYTES, more = ''): string => `GET ${path} HTTP/1.1\r\nHost: a.test\r\nX-Answer-Bytes: ${bytes}\r\n${more}\r\n`;

/**
 * Asks for the large answer, reads nothing for five send bounds, then reads on: resolves with the bytes it got before
 * the connection ended (or all of them, if the gateway kept it open).
 */
async function readAfterStall(socket: Duplex, path: string, more = ''): Promise<number> {
  socket.pause();
  socket.on('error', () => undefined); // a reset of the cut connection ends the read like a close
  socket.write(request(path, ANSWER_BYTES, more));
  await sleep(5 * SEND_BOUND_MS);
  let got = 0;
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => (got += chunk.length));
  socket.resume();
  // The bound's timer is cleared once the connection has ended: left pending, it kept the file's process alive for
  // up to 30 s after its last test.
  let bound: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    bound = setTimeout(() => {
      socket.destroy();
      resolve();
    }, 30_000);
  });
  try {
    await Promise.race([ended, timedOut]);
  } finally {
    clearTimeout(bound);
  }
  return got;
}

/** What the steady reader asks for: still beyond the socket buffers, read in a few seconds. */
const STEADY_BYTES = 16 * 1024 * 1024;

/**
 * Asks for STEADY_BYTES and reads about 256 KB every 50 ms (some 5 MB/s, far slower than loopback): resolves with
 * the body bytes it got (not the head's) once it has all of them or the connection has ended.
 */
async function readSteadily(socket: Duplex, path: string): Promise<number> {
  socket.pause();
  socket.on('error', () => undefined);
  socket.write(request(path, STEADY_BYTES));
  let head = Buffer.alloc(0);
  let body = -1; // until the head has ended
  let window = 0;
  socket.on('data', (chunk: Buffer) => {
    window += chunk.length;
    if (window >= 256 * 1024) socket.pause();
    if (body >= 0) body += chunk.length;
    else {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) body = head.length - end - 4;
    }
  });
  const reader = setInterval(() => {
    window = 0;
    socket.resume();
  }, 50);
  try {
    await waitFor(() => body >= STEADY_BYTES || socket.destroyed, 'the whole answer read, or the connection closed', 40_000);
  } finally {
    clearInterval(reader);
    socket.destroy();
  }
  return body;
}

function completed(gw: InProcessGateway, path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

// Its five tests run at once (own connections and paths on the two gateways; mostly 5 s stalls): one after another
// they took 22 s. The process then holds up to three unread 64 MB answers at a time (max RSS 450 MB, was 310 MB).
describe('an HTTP/1.1 answer handed over whole to a client that reads none of it', { timeout: 120_000, concurrency: true }, () => {
  const certificate = aTestCertificateHooks('H1 Unread Answer CA');
  let backend: TestBackend;
  let plain: InProcessGateway;
  let tls: InProcessGateway;

  before(async () => {
    backend = await startBackend('api');
    plain = await startInProcess(gatewayConfig(backend.port));
    tls = await startInProcess(gatewayConfig(backend.port, { cert_file: certificate.certFile, key_file: certificate.keyFile }));
    certificate.gateways.push(plain, tls);
  });
  after(async () => {
    await backend?.stop();
  });

  test('cleartext: the connection is closed within a few send bounds, logged CLIENT_SEND_TIMEOUT', async () => {
    const got = await readAfterStall(await openPlain(plain.gateway.port), '/plain-stalled');
    assert.ok(got < ANSWER_BYTES, `the connection was closed mid-answer (read ${got} of ${ANSWER_BYTES})`);
    await waitFor(() => completed(plain, '/plain-stalled') !== undefined, 'the request logged', 10_000);
    assert.equal(completed(plain, '/plain-stalled')?.status, 200);
    assert.equal(completed(plain, '/plain-stalled')?.error, 'CLIENT_SEND_TIMEOUT');
  });

  test('TLS: the connection is closed within a few send bounds, logged CLIENT_SEND_TIMEOUT', async () => {
    const got = await readAfterStall(await openTls(tls.gateway.port, certificate.ca.ca), '/tls-stalled');
    assert.ok(got < ANSWER_BYTES, `the connection was closed mid-answer (read ${got} of ${ANSWER_BYTES})`);
    await waitFor(() => completed(tls, '/tls-stalled') !== undefined, 'the request logged', 10_000);
    assert.equal(completed(tls, '/tls-stalled')?.error, 'CLIENT_SEND_TIMEOUT');
  });

  test('an answer to a WebSocket Upgrade (the plugin answers instead of the upstream switching) is cut the same', async () => {
    const socket = await openPlain(plain.gateway.port);
    const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const got = await readAfterStall(socket, '/upgrade-stalled', upgrade);
    assert.ok(got < ANSWER_BYTES, `the connection was closed mid-answer (read ${got} of ${ANSWER_BYTES})`);
    await waitFor(() => completed(plain, '/upgrade-stalled') !== undefined, 'the request logged', 10_000);
    assert.equal(completed(plain, '/upgrade-stalled')?.error, 'CLIENT_SEND_TIMEOUT');
  });

  test('cleartext: a client reading steadily gets the whole answer', async () => {
    assert.equal(await readSteadily(await openPlain(plain.gateway.port), '/plain-steady'), STEADY_BYTES);
    await waitFor(() => completed(plain, '/plain-steady') !== undefined, 'the request logged', 10_000);
    assert.equal(completed(plain, '/plain-steady')?.error, undefined);
  });

  test('TLS: a client reading steadily gets the whole answer', async () => {
    assert.equal(await readSteadily(await openTls(tls.gateway.port, certificate.ca.ca), '/tls-steady'), STEADY_BYTES);
    await waitFor(() => completed(tls, '/tls-steady') !== undefined, 'the request logged', 10_000);
    assert.equal(completed(tls, '/tls-steady')?.error, undefined);
  });
});
