// A client's fatal HTTP/2 protocol error (a connection error, RFC 9113 §5.4.1) closes its connection right after the
// GOAWAY, as nginx and Envoy do. node answers GOAWAY and then stops reading the connection without a word to the
// server; the gateway held the TLS connection open until server.timeouts.idle. Raw frames over TLS: each member of
// the family a well-behaved HTTP/2 library never sends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { FLAG, FRAME, PREFACE, clientPreface, frame, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** Far beyond the test's bounds: a connection still open when it ends was held by the idle timeout. */
const IDLE_MS = 60_000;
const HEADER_MS = 10_000;
/** How soon after the offending bytes the connection must be gone. */
const CLOSE_BOUND_MS = 3_000;

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Protocol Error CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('protocol-error');
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: `${HEADER_MS}ms`, idle: `${IDLE_MS}ms` } },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
});

after(async () => {
  await gw?.close();
  await backend?.stop();
  pki.remove();
});

/** Open client connections as the gateway counts them (/api/status). */
async function connections(): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
}

function settingsFrame(id: number, value: number): Buffer {
  const p = Buffer.alloc(6);
  p.writeUInt16BE(id, 0);
  p.writeUInt32BE(value, 2);
  return frame(FRAME.SETTINGS, 0, 0, p);
}

const GET = (path: string) => requestBlock('GET', path);

/** Each a connection error: what the client sends after the TLS handshake. */
const CASES: ReadonlyArray<{ readonly name: string; readonly bytes: () => Buffer; readonly servedFirst?: boolean }> = [
  { name: 'a bad connection preface', bytes: () => Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n' + 'x'.repeat(40)) },
  { name: 'HEADERS on stream 0', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 0, GET('/echo'))]) },
  { name: 'SETTINGS with ENABLE_PUSH 2', bytes: () => Buffer.concat([PREFACE, settingsFrame(0x2, 2)]) },
  { name: 'SETTINGS with INITIAL_WINDOW_SIZE over 2^31-1', bytes: () => Buffer.concat([PREFACE, settingsFrame(0x4, 0x80000000)]) },
  { name: 'SETTINGS of a length not a multiple of 6 (FRAME_SIZE_ERROR)', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5))]) },
  { name: 'PING of 7 bytes', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.PING, 0, 0, Buffer.alloc(7))]) },
  {
    name: 'a PING inside a header block (CONTINUATION expected)',
    bytes: () => Buffer.concat([clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, GET('/echo')), frame(FRAME.PING, 0, 0, Buffer.alloc(8))]),
  },
  { name: 'CONTINUATION without HEADERS', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, GET('/echo'))]) },
  { name: 'a WINDOW_UPDATE of 0 on the connection', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4))]) },
  { name: 'DATA on stream 0', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.DATA, 0, 0, Buffer.from('x'))]) },
  { name: 'HEADERS on an even (server) stream id', bytes: () => Buffer.concat([clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2, GET('/echo'))]) },
  {
    name: 'HEADERS on stream 0 after a request was served',
    servedFirst: true,
    bytes: () => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 0, GET('/echo')),
  },
];

describe('a fatal HTTP/2 protocol error closes the connection after GOAWAY', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      await waitFor(async () => (await connections()) === 0, 'no connection left from the previous test');
      const h2 = await rawH2(gw.gateway.port, ca.ca);
      try {
        if (c.servedFirst) {
          h2.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, GET('/echo')));
          await waitFor(async () => h2.frames().some((f) => f.type === FRAME.DATA && f.stream === 1 && (f.flags & FLAG.END_STREAM) !== 0), 'the first answer');
        }
        const sentAt = Date.now();
        h2.send(c.bytes());
        const closed = await Promise.race([h2.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), CLOSE_BOUND_MS))]);
        assert.ok(closed, `the connection is closed within ${CLOSE_BOUND_MS} ms (still open ${Date.now() - sentAt} ms after the error)`);
        // A preface that is not one gets no GOAWAY of ours to read (node may send one); every other error does.
        if (c.name !== 'a bad connection preface') {
          const goaway = h2.frames().find((f) => f.type === FRAME.GOAWAY);
          assert.ok(goaway !== undefined, 'GOAWAY before the close');
          assert.notEqual(goaway.payload.readUInt32BE(4), 0, 'with an error code');
        }
        await waitFor(async () => (await connections()) === 0, 'the gateway counts the connection gone', CLOSE_BOUND_MS);
      } finally {
        h2.socket.destroy();
      }
    });
  }

  test('with a stream still open: the connection closes, and its upstream request is cut', async () => {
    await waitFor(async () => (await connections()) === 0, 'no connection left from the previous test');
    const h2 = await rawH2(gw.gateway.port, ca.ca);
    try {
      h2.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, GET('/slow?ms=30000')));
      await waitFor(() => backend.active === 1, 'the request upstream');
      h2.send(frame(FRAME.PING, 0, 0, Buffer.alloc(7)));
      const closed = await Promise.race([h2.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), CLOSE_BOUND_MS))]);
      assert.ok(closed, `the connection is closed within ${CLOSE_BOUND_MS} ms`);
      await waitFor(() => backend.active === 0, 'the upstream request cut', CLOSE_BOUND_MS);
      await waitFor(async () => (await connections()) === 0, 'the gateway counts the connection gone', CLOSE_BOUND_MS);
    } finally {
      h2.socket.destroy();
    }
  });

  test('with timeouts.idle 0, a connection that had served a request closes too', async () => {
    const cert = ca.issue('b.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'idle0' });
    const noIdle = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: `${HEADER_MS}ms`, idle: 0 } },
      load_balancing: { upstreams: upstreams([backend.port]) },
    });
    const h2 = await rawH2(noIdle.gateway.port, ca.ca);
    try {
      h2.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, GET('/echo')));
      await waitFor(async () => h2.frames().some((f) => f.type === FRAME.DATA && f.stream === 1 && (f.flags & FLAG.END_STREAM) !== 0), 'the first answer');
      h2.send(frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5)));
      const closed = await Promise.race([h2.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), CLOSE_BOUND_MS))]);
      assert.ok(closed, `the connection is closed within ${CLOSE_BOUND_MS} ms`);
    } finally {
      h2.socket.destroy();
      await noIdle.close();
    }
  });

  test('a well-behaved connection is still served after the others', async () => {
    const h2 = await rawH2(gw.gateway.port, ca.ca);
    try {
      h2.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, GET('/echo')));
      await waitFor(async () => h2.frames().some((f) => f.type === FRAME.HEADERS && f.stream === 1), 'an answer');
      assert.equal(h2.closedAfter(), undefined, 'kept open');
    } finally {
      h2.socket.destroy();
    }
  });
});
