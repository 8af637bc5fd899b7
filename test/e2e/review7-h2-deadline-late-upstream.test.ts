// An upstream answer landing after the HTTP/2 stream deadline (server.timeouts.request) has answered the request
// itself. That 408 is written by the listener beside the driver (listeners/h2-guard.ts) while the upstream request
// still runs; the attempt ends only when the stream closes, after the 408 is out. A client whose window holds the
// 408's body back (here: SETTINGS_INITIAL_WINDOW_SIZE 0) keeps the stream open, and an upstream head landing
// meanwhile must not become the request's status: the access log says what the client got, 408 REQUEST_TIMEOUT.
// Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineGateway, releaseHeld408, sendHeldUpload } from '../helpers/h2-deadline.js';
import { rawH2 } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';

const stack = tlsStackHooks('H2 Deadline Late Upstream CA');
const { ca } = stack;

test('a late upstream answer after the stream deadline\'s 408 leaves the request logged 408', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await deadlineGateway(stack, backend.port);
  const client = await rawH2(gw.port, ca.ca);
  try {
    // An upload that never ends; the upstream answers 1.8 s after its head, whatever the body.
    sendHeldUpload(client, '/slow?ms=1800');
    // The upstream answers meanwhile (at 1.8 s); then the client opens its window and the 408's body goes out.
    const { logged, body } = await releaseHeld408(client, gw, '/slow', 2_000);
    assert.match(body, /"code":"request_timeout"/, 'the client got the 408 body');
    assert.doesNotMatch(body, /slow/, 'and nothing of the upstream answer');
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT');
    const errors = gw.logs.filter((l) => (l.level as number) >= 50).map((l) => String(l.msg));
    assert.deepEqual(errors, [], 'no error logged');
  } finally {
    client.socket.destroy();
  }
});
