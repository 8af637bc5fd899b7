// A request phase that fails after the HTTP/2 stream deadline (server.timeouts.request) has answered the request
// itself: here a plugin's onRequest that never settles, past middleware.plugin_timeout. The 408 is written by the
// listener beside the driver (listeners/h2-guard.ts, outside-answer.ts) and its stream stays open while a client's
// window holds its body back; the phase's error reply (sendError) then destroyed that stream (RST_STREAM NO_ERROR,
// the 408's body never sent) and the request was logged with the hook's error. The client gets the 408 whole, and the
// access log says what it got: 408 REQUEST_TIMEOUT. Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineGateway, sendHeldUpload } from '../helpers/h2-deadline.js';
import { FRAME, rawH2, windowUpdate } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { sleep, waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Deadline Hook Failure CA');
const { ca } = stack;

const ACTIONS = new URL('../plugins/fixtures/actions.mjs', import.meta.url).pathname;

test('a plugin hook failing after the stream deadline\'s 408 leaves the 408 whole and logged', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await deadlineGateway(stack, backend.port, {
    plugins: [{ name: 'actions', module: ACTIONS }],
    middleware: { plugins: ['actions'], plugin_timeout: '1500ms' },
  });
  const client = await rawH2(gw.port, ca.ca);
  try {
    // An upload that never ends; the plugin's request hook never settles (timed out at 1.5 s).
    sendHeldUpload(client, '/hooked', [['x-plugin-action', 'hang-request']]);
    const head408 = (): boolean => client.frames().some((f) => f.type === FRAME.HEADERS && f.stream === 1);
    await waitFor(head408, 'the 408 head', 10_000);
    // The hook times out meanwhile (at 1.5 s); then the client opens its window and the 408's body goes out.
    await sleep(1_500);
    client.send(windowUpdate(1, 65_535));
    const line = (): Record<string, unknown> | undefined => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/hooked');
    await waitFor(() => line() !== undefined, 'the request logged', 10_000);
    const body = Buffer.concat(client.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1).map((f) => f.payload)).toString();
    const reset = client.frames().find((f) => f.type === FRAME.RST_STREAM && f.stream === 1)?.payload.readUInt32BE(0);
    assert.match(body, /"code":"request_timeout"/, `the client got the 408 body (reset: ${reset})`);
    const logged = line()!;
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT', `and its error (line: ${JSON.stringify(logged)})`);
  } finally {
    client.socket.destroy();
  }
});
