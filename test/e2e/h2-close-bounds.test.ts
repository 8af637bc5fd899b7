// HTTP/2 connections the gateway is done with are let go of within bounds: a header block left unfinished (HEADERS
// without END_HEADERS, with or without CONTINUATION frames) is cut server.timeouts.header after it began, and a
// session asked to close (the idle GOAWAY, the block's GOAWAY, a shutdown) that has no open stream left is destroyed
// timeouts.header later, whether a block is still unfinished or the client never reads the GOAWAY. Raw frames over
// TLS: no HTTP/2 library sends half a header block.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { spawnGateway, startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { FLAG, FRAME, clientPreface, frame, rawH2, requestBlock, type RawH2 } from '../helpers/h2-frames.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const HEADER_MS = 1_000;
const IDLE_MS = 500;
const CHUNK_MS = 1_000;
/** How often the gateway looks (a quarter of timeouts.header, at least 250 ms). */
const CHECK_MS = 250;
/**
 * When an unfinished block's connection is closed at the latest, from the block's start: first seen up to a turn
 * after it began, GOAWAY on the first turn timeouts.header later, destroyed on the next.
 */
const BLOCK_BOUND_MS = HEADER_MS + 3 * CHECK_MS;
/** How far past an expected moment an event may come on a loaded machine. */
const SLACK_MS = 1_500;
/** Long enough that a test which ends before it did not wait for the drain. */
const DRAIN_MS = 8_000;

const pki = pkiDir();
let ca: TestCa;
let cert: { certFile: string; keyFile: string };
let backend: TestBackend;
let counting: CountingUpstream;
let gw: InProcessGateway;

function config(upstreamPort: number): Record<string, unknown> {
  return {
    server: {
      tls: { cert_file: cert.certFile, key_file: cert.keyFile },
      timeouts: { header: `${HEADER_MS}ms`, idle: `${IDLE_MS}ms`, request_body_chunk: `${CHUNK_MS}ms`, shutdown_drain: `${DRAIN_MS}ms` },
    },
    load_balancing: { upstreams: upstreams([upstreamPort]) },
  };
}

before(async () => {
  ca = createTestCa('Close Bounds CA', pki.path);
  cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('close-bounds');
  counting = await startCountingUpstream(60_000);
  gw = await startInProcess(config(backend.port));
});

after(async () => {
  await gw?.close();
  await backend?.stop();
  await counting?.close();
  pki.remove();
});

/** Open client connections as a gateway counts them (/api/status). */
async function connections(g: InProcessGateway): Promise<number> {
  return ((await (await fetch(`${g.adminUrl}/api/status`)).json()) as { connections: number }).connections;
}

const GET = (path: string) => requestBlock('GET', path);
const goaway = (c: RawH2) => c.frames().find((f) => f.type === FRAME.GOAWAY);
/** A response HEADERS frame came on `stream`. */
const answered = (c: RawH2, stream: number) => c.frames().some((f) => f.type === FRAME.HEADERS && f.stream === stream);

describe('an unfinished header block', () => {
  test('with timeouts.header 0, timeouts.idle bounds it instead', async () => {
    const noHeaderBound = await startInProcess({
      ...config(backend.port),
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { header: 0, idle: `${HEADER_MS}ms` } },
    });
    const c = await rawH2(noHeaderBound.gateway.port, ca.ca);
    try {
      c.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, GET('/echo')));
      await Promise.race([c.closed, sleep(BLOCK_BOUND_MS + SLACK_MS)]);
      const after = c.closedAfter();
      assert.ok(after !== undefined, `the connection is still open ${BLOCK_BOUND_MS + SLACK_MS} ms later`);
      assert.ok(after >= HEADER_MS - 50, `closed at ${after} ms: the client had timeouts.idle`);
    } finally {
      c.socket.destroy();
      await noHeaderBound.close();
    }
  });

  test('HEADERS without END_HEADERS, then silence: the connection is closed timeouts.header after', async () => {
    const c = await rawH2(gw.gateway.port, ca.ca);
    try {
      const block = GET('/echo');
      c.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block));
      await Promise.race([c.closed, sleep(BLOCK_BOUND_MS + SLACK_MS)]);
      const after = c.closedAfter();
      assert.ok(after !== undefined, `the connection is still open ${BLOCK_BOUND_MS + SLACK_MS} ms later`);
      assert.ok(after >= HEADER_MS - 50, `closed at ${after} ms: the client had timeouts.header to finish its block`);
      assert.equal(answered(c, 1), false);
      // Told first: GOAWAY naming the unfinished stream, which the client may retry elsewhere.
      assert.equal(goaway(c)?.payload.readUInt32BE(0), 1);
    } finally {
      c.socket.destroy();
    }
  });

  test('HEADERS and CONTINUATION without END_HEADERS, then silence: the same', async () => {
    const c = await rawH2(gw.gateway.port, ca.ca);
    try {
      const block = GET('/echo');
      c.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block.subarray(0, 12)));
      await sleep(HEADER_MS / 4);
      c.send(frame(FRAME.CONTINUATION, 0, 1, block.subarray(12, 30)));
      await sleep(HEADER_MS / 4);
      c.send(frame(FRAME.CONTINUATION, 0, 1, block.subarray(30, 40)));
      await Promise.race([c.closed, sleep(BLOCK_BOUND_MS + SLACK_MS)]);
      const after = c.closedAfter();
      assert.ok(after !== undefined, 'the connection is still open');
      // The bound runs from the block's start, not its last fragment: a trickled block gets no more time.
      assert.ok(after >= HEADER_MS - 50 && after < BLOCK_BOUND_MS + SLACK_MS, `closed at ${after} ms`);
    } finally {
      c.socket.destroy();
    }
  });

  test('a header block finished within timeouts.header, after the idle time, is answered: no idle GOAWAY meanwhile', async () => {
    const c = await rawH2(gw.gateway.port, ca.ca);
    try {
      const block = GET('/echo');
      c.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block.subarray(0, 12)));
      await sleep(IDLE_MS + 200);
      assert.equal(goaway(c), undefined, 'a stream on its way is not idle');
      c.send(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, block.subarray(12)));
      // Before, the idle GOAWAY had gone out, and node refused the finished stream (RST_STREAM REFUSED_STREAM).
      await waitFor(() => answered(c, 1), 'the answer on stream 1', SLACK_MS);
      // Then the usual idle close: a GOAWAY that the client, which reads it but never closes, is let go of after.
      await waitFor(() => goaway(c) !== undefined, 'the idle GOAWAY', IDLE_MS + CHECK_MS + SLACK_MS);
      assert.equal(goaway(c)!.payload.readUInt32BE(0) & 0x7fffffff, 1, 'GOAWAY names stream 1 as the last one processed');
    } finally {
      c.socket.destroy();
    }
  });

  test('beside a stream in progress: GOAWAY at timeouts.header, the stream is still answered, then the connection closes', async () => {
    const c = await rawH2(gw.gateway.port, ca.ca);
    const slowMs = HEADER_MS + 1_500;
    try {
      c.send(
        clientPreface(),
        frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, GET(`/slow?ms=${slowMs}`)),
        frame(FRAME.HEADERS, FLAG.END_STREAM, 3, GET('/echo')),
      );
      const started = Date.now();
      await waitFor(() => goaway(c) !== undefined, 'a GOAWAY', BLOCK_BOUND_MS + SLACK_MS);
      assert.ok(Date.now() - started >= HEADER_MS - 50, `GOAWAY at ${Date.now() - started} ms`);
      assert.equal(answered(c, 1), false, 'the slow stream is not cut by the GOAWAY');
      await waitFor(() => answered(c, 1), 'the slow answer', slowMs + SLACK_MS);
      assert.equal(goaway(c)!.payload.readUInt32BE(0), 3, 'GOAWAY names the unfinished stream');
      // With no stream of its own left open and the block still unfinished, the connection is closed.
      await Promise.race([c.closed, sleep(CHECK_MS + SLACK_MS)]);
      assert.ok(c.closedAfter() !== undefined, 'the connection is closed once its last stream is answered');
      assert.equal(answered(c, 3), false);
    } finally {
      c.socket.destroy();
    }
  });
});

describe('a session asked to close', () => {
  test('a client that never reads the idle GOAWAY is let go of timeouts.header later', async () => {
    await waitFor(async () => (await connections(gw)) === 0, 'no connection left from the previous tests', 10_000);
    const c = await rawH2(gw.gateway.port, ca.ca, { read: false });
    try {
      c.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, GET('/echo')));
      const started = Date.now();
      await waitFor(async () => (await connections(gw)) === 1, 'the connection to be counted');
      // Answered (the answer sits unread in the client's buffers), idle for IDLE_MS, GOAWAY, then
      // timeouts.header for the client to close its side.
      const bound = IDLE_MS + HEADER_MS + CHECK_MS + SLACK_MS;
      await waitFor(async () => (await connections(gw)) === 0, `the gateway to drop the connection within ${bound} ms`, bound, 50);
      assert.ok(Date.now() - started >= IDLE_MS + HEADER_MS - 100, `dropped at ${Date.now() - started} ms`);
    } finally {
      c.socket.destroy();
    }
  });

  test('a stream whose body stalls while its session closes is ended by request_body_chunk: the drain does not wait', async () => {
    const own = await startInProcess(config(counting.port));
    const c = await rawH2(own.gateway.port, ca.ca);
    try {
      c.send(
        clientPreface(),
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('POST', '/upload', [['content-length', '100']])),
        frame(FRAME.DATA, 0, 1, Buffer.alloc(10, 'x')),
      );
      await waitFor(() => counting.open === 1, 'the request to reach the upstream');
      const started = Date.now();
      await own.close();
      const took = Date.now() - started;
      assert.ok(took < CHUNK_MS + SLACK_MS + 1_000, `the stop took ${took} ms (drain ${DRAIN_MS} ms)`);
      assert.equal(own.logs.find((l) => l.msg === 'Gateway Stopped')?.drained, true);
      const completed = own.logs.find((l) => l.msg === 'Request Completed' && l.path === '/upload');
      assert.equal(completed?.status, 408);
    } finally {
      c.socket.destroy();
    }
  });

  test('at shutdown, an unfinished header block and a client that never reads do not hold the drain', async () => {
    const own = await startInProcess(config(backend.port));
    const block = await rawH2(own.gateway.port, ca.ca);
    const deaf = await rawH2(own.gateway.port, ca.ca, { read: false });
    try {
      block.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, GET('/echo')));
      deaf.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, GET('/echo')));
      await waitFor(async () => (await connections(own)) === 2, 'both connections to be counted');
      await sleep(100); // the deaf client's answer is out
      const started = Date.now();
      await own.close();
      const took = Date.now() - started;
      // Both are gone timeouts.header after the shutdown's GOAWAY at the latest: well before the drain would end.
      assert.ok(took < BLOCK_BOUND_MS + SLACK_MS, `the stop took ${took} ms (drain ${DRAIN_MS} ms)`);
      assert.equal(own.logs.find((l) => l.msg === 'Gateway Stopped')?.drained, true);
    } finally {
      block.socket.destroy();
      deaf.socket.destroy();
    }
  });

  test('SIGTERM: the process exits without waiting out the drain for such connections', async () => {
    const child = await spawnGateway(config(backend.port));
    const block = await rawH2(child.port, ca.ca);
    const deaf = await rawH2(child.port, ca.ca, { read: false });
    try {
      block.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM, 1, GET('/echo')));
      deaf.send(clientPreface(), frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, GET('/echo')));
      await sleep(300);
      const started = Date.now();
      child.signal('SIGTERM');
      const { code } = await child.exited;
      const took = Date.now() - started;
      assert.equal(code, 0);
      // The drain's own bound, by the gateway's clock: from its Stopping line to its Stopped line. The signal's
      // delivery, the process's exit and this process seeing it come on top, and at load 15 took up to 2.5 s more
      // (0.6 s, 1.7 s, 0.3 s): the whole is bounded only by the drain it must not wait out.
      const at = (msg: string): number => Number(child.logs.find((l) => l.msg === msg)?.time);
      const drainTook = at('Gateway Stopped') - at('Gateway Stopping');
      assert.ok(drainTook < BLOCK_BOUND_MS + SLACK_MS, `stopped ${drainTook} ms after it began stopping (drain ${DRAIN_MS} ms)`);
      assert.ok(took < DRAIN_MS, `exited ${took} ms after SIGTERM (drain ${DRAIN_MS} ms)`);
      assert.equal(child.logs.find((l) => l.msg === 'Gateway Stopped')?.drained, true);
    } finally {
      block.socket.destroy();
      deaf.socket.destroy();
      await child.cleanup();
    }
  });
});
