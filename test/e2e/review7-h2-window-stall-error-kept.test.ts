// An error answer (here a 502: its upstream refuses connections) that waits at an HTTP/2 client's exhausted
// flow-control window and is reset by the send bound for answers handed over whole (listeners/h2-guard.ts, e883b00)
// keeps the error that made it: its Request Completed line and portcullis_request_errors_total said
// CLIENT_SEND_TIMEOUT for a 502, and the upstream failure behind it was counted nowhere. An answer without an error
// of its own (/health) is still logged CLIENT_SEND_TIMEOUT (review7-h2-window-stall-log). Raw TLS h2 client (frames
// by hand, never a WINDOW_UPDATE) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame, FRAME, FLAG, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { exhaustConnectionWindow, windowStallGateway } from '../helpers/h2-window-stall.js';
import { freePort } from '../helpers/ports.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Window Stall Error Kept CA');
const { ca } = stack;

test('an error answer reset at an exhausted window keeps its own error', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const deadPort = await freePort();
  const gw = await windowStallGateway(stack, backend.port, { dead: deadPort });
  const client = await rawH2(gw.port, ca.ca);
  try {
    // Stream 1 takes the whole connection window (65,535 bytes) and is never acknowledged.
    await exhaustConnectionWindow(client);
    client.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('GET', '/health')),
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 5, requestBlock('GET', '/dead')),
    );
    const completed = (path: string): Record<string, unknown> | undefined =>
      gw.logs.find((l) => l.msg === 'Request Completed' && typeof l.path === 'string' && l.path.startsWith(path));
    await waitFor(() => completed('/health') !== undefined && completed('/dead') !== undefined, 'two Request Completed lines', 20_000);
    // Both were cut at the window (RST_STREAM CANCEL), not sent whole.
    const reset = (stream: number): number | undefined => client.frames().find((f) => f.type === FRAME.RST_STREAM && f.stream === stream)?.payload.readUInt32BE(0);
    assert.deepEqual([reset(3), reset(5)], [0x8, 0x8], 'both answers reset with CANCEL');
    assert.equal(completed('/health')!.error, 'CLIENT_SEND_TIMEOUT');
    const dead = completed('/dead')!;
    assert.equal(dead.status, 502, JSON.stringify(dead));
    assert.equal(dead.error, 'UPSTREAM_UNREACHABLE', `the 502 keeps its own error (line: ${JSON.stringify(dead)})`);
  } finally {
    client.socket.destroy();
  }
});
