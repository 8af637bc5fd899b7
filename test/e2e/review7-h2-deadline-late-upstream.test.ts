// An upstream answer landing after the HTTP/2 stream deadline (server.timeouts.request) has answered the request
// itself. That 408 is written by the listener beside the driver (listeners/h2-guard.ts) while the upstream request
// still runs; the attempt ends only when the stream closes, after the 408 is out. A client whose window holds the
// 408's body back (here: SETTINGS_INITIAL_WINDOW_SIZE 0) keeps the stream open, and an upstream head landing
// meanwhile must not become the request's status: the access log says what the client got, 408 REQUEST_TIMEOUT.
// Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineGateway, sendHeldUpload } from '../helpers/h2-deadline.js';
import { FRAME, rawH2, windowUpdate } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Deadline Late Upstream CA');
const { ca } = stack;

test('a late upstream answer after the stream deadline\'s 408 leaves the request logged 408', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await deadlineGateway(stack, backend.port);
  const client = await rawH2(gw.port, ca.ca);
  try {
    // An upload that never ends; the upstream answers 1.8 s after its head, whatever the body.
    sendHeldUpload(client, '/slow?ms=1800');
    // The deadline's 408 head goes out at 1 s (HEADERS are not flow-controlled); its body waits for a window.
    const head408 = (): boolean => client.frames().some((f) => f.type === FRAME.HEADERS && f.stream === 1);
    await waitFor(head408, 'the 408 head', 10_000);
    // The upstream answers meanwhile (at 1.8 s); then the client opens its window and the 408's body goes out.
    await sleep(2_000);
    client.send(windowUpdate(1, 65_535));
    const line = (): Record<string, unknown> | undefined => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/slow');
    await waitFor(() => line() !== undefined, 'the request logged', 10_000);
    const body = Buffer.concat(client.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1).map((f) => f.payload)).toString();
    assert.match(body, /"code":"request_timeout"/, 'the client got the 408 body');
    assert.doesNotMatch(body, /slow/, 'and nothing of the upstream answer');
    const logged = line()!;
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT');
    const errors = gw.logs.filter((l) => (l.level as number) >= 50).map((l) => String(l.msg));
    assert.deepEqual(errors, [], 'no error logged');
  } finally {
    client.socket.destroy();
  }
});
