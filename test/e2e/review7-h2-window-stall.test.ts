// What was wrong: an HTTP/2 client that takes the bytes of one download and never sends WINDOW_UPDATE exhausts its
// connection's flow-control window; every later answer on that connection then waits at the window for good. The
// download itself is cut by the send bound (forward.ts, while its upstream is paused), but an answer handed over
// whole was never cut: a gateway-made one (a 404, an /auth/* answer) or a small proxied one whose upstream had ended.
// Its stream, its request (in flight) and the connection stayed open past every timeout (timeouts.request bounds the
// request's arrival, request_body_chunk only a paused upstream, and the idle close waits for open streams), whether
// or not the client acknowledges PINGs. What is right now: such a stream is closed with RST_STREAM (CANCEL, which
// flow control does not hold back) once its held bytes have not gone down for request_body_chunk, and the request
// ends. Raw TLS h2 client (frames by hand, never a WINDOW_UPDATE) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame, FRAME, FLAG, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { exhaustConnectionWindow, windowStallGateway } from '../helpers/h2-window-stall.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Window Stall CA');
const { ca } = stack;

const RST_STREAM = 3;
const H2_CANCEL = 8;

test('answers stuck behind an exhausted flow-control window are reset after request_body_chunk and their requests end', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await windowStallGateway(stack, backend.port);
  assert.ok(gw.adminPort !== undefined);
  const client = await rawH2(gw.port, ca.ca);
  try {
    // Stream 1 takes the whole connection window (65,535 bytes) and is never acknowledged.
    await exhaustConnectionWindow(client);
    // Then a gateway-made answer (the health route) and a small proxied one: their heads go out, their bodies cannot.
    client.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('GET', '/health')),
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 5, requestBlock('GET', '/echo')),
    );
    const reset = (stream: number): boolean =>
      client.frames().some((f) => f.type === RST_STREAM && f.stream === stream && f.payload.readUInt32BE(0) === H2_CANCEL);
    await waitFor(() => reset(3) && reset(5), 'streams 3 and 5 reset', 15_000).catch(() => {
      const seen = client.frames().map((f) => `${f.type}@${f.stream}`).join(' ');
      throw new Error(`never reset (frames: ${seen}; closed after ${String(client.closedAfter())} ms)`);
    });
    let inFlight: string | undefined;
    await waitFor(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
        inFlight = text.split('\n').find((l) => l.startsWith('portcullis_requests_in_flight '));
        return inFlight === 'portcullis_requests_in_flight 0';
      },
      'no request left in flight',
      10_000,
    ).catch(() => {
      throw new Error(`still in flight: ${inFlight}`);
    });
  } finally {
    client.socket.destroy();
  }
});
