// What was wrong: since 41e7a49 an answer handed over whole (a gateway-made one, or a proxied one whose upstream had
// ended) that waits at an HTTP/2 client's exhausted flow-control window is reset with CANCEL after
// request_body_chunk (listeners/h2-guard.ts). Its request was then logged as a clean success ("status":200 and no
// error), as if the client had the whole answer, while the same stall of a response whose upstream is still sending
// (forward.ts's send bound) is logged with error CLIENT_SEND_TIMEOUT. What is right now: both say
// CLIENT_SEND_TIMEOUT; the status stays the one whose head went out. Raw TLS h2 client (frames by hand, never a
// WINDOW_UPDATE) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame, FRAME, FLAG, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { exhaustConnectionWindow, windowStallGateway } from '../helpers/h2-window-stall.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Window Stall Log CA');
const { ca } = stack;

test('an answer reset at an exhausted window is logged CLIENT_SEND_TIMEOUT, as a stalled download is', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await windowStallGateway(stack, backend.port);
  const client = await rawH2(gw.port, ca.ca);
  try {
    // Stream 1 takes the whole connection window (65,535 bytes) and is never acknowledged.
    await exhaustConnectionWindow(client);
    // A gateway-made answer and a small proxied one: handed over whole, their bodies held at the window.
    client.send(
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('GET', '/health')),
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 5, requestBlock('GET', '/echo')),
    );
    const completed = (path: string): Record<string, unknown> | undefined =>
      gw.logs.find((l) => l.msg === 'Request Completed' && typeof l.path === 'string' && l.path.startsWith(path));
    await waitFor(() => completed('/health') !== undefined && completed('/echo') !== undefined && completed('/download') !== undefined, 'three Request Completed lines', 20_000);
    // The reference: the download, cut by forward.ts's send bound while its upstream waited.
    assert.equal(completed('/download')!.error, 'CLIENT_SEND_TIMEOUT');
    for (const path of ['/health', '/echo']) {
      const line = completed(path)!;
      assert.equal(line.status, 200, `${path}: the status whose head went out`);
      assert.equal(line.error, 'CLIENT_SEND_TIMEOUT', `${path}: ${JSON.stringify(line)}`);
    }
  } finally {
    client.socket.destroy();
  }
});
