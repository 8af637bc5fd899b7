// An upstream attempt that fails after the HTTP/2 stream deadline (server.timeouts.request) has answered the request
// itself. That 408 is written by the listener beside the driver (listeners/h2-guard.ts, outside-answer.ts) while the
// upstream request still runs; a client whose window holds the 408's body back keeps the stream open, and the
// attempt's failure meanwhile (here its upstream dropping the connection) went to the error reply, which destroyed the
// answered stream (RST_STREAM NO_ERROR, the 408's body never sent), and the request was logged 408 UPSTREAM_RESET.
// The client gets the 408 whole, and the access log (and error metric) say what it got: 408 REQUEST_TIMEOUT.
// Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { deadlineGateway, releaseHeld408, sendHeldUpload } from '../helpers/h2-deadline.js';
import { rawH2 } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';

const stack = tlsStackHooks('H2 Deadline Upstream Failure CA');
const { ca } = stack;

test('an upstream failure after the stream deadline\'s 408 leaves the request logged 408 REQUEST_TIMEOUT', { timeout: 60_000 }, async () => {
  // An upstream that takes the request, then drops its connection 1.5 s after it came, unanswered.
  const sockets = new Set<Socket>();
  const upstream = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
    setTimeout(() => socket.destroy(), 1_500).unref();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  stack.cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });
  const gw = await deadlineGateway(stack, (upstream.address() as AddressInfo).port);
  const client = await rawH2(gw.port, ca.ca);
  try {
    // An upload that never ends; the upstream drops it at 1.5 s.
    sendHeldUpload(client, '/slow');
    // The attempt fails meanwhile (at 1.5 s); then the client opens its window and the 408's body goes out.
    const { logged, body } = await releaseHeld408(client, gw, '/slow', 1_500);
    assert.match(body, /"code":"request_timeout"/, 'the client got the 408 body');
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT', `and its error (line: ${JSON.stringify(logged)})`);
  } finally {
    client.socket.destroy();
  }
});
