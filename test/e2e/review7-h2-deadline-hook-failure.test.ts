// A request phase that fails after the HTTP/2 stream deadline (server.timeouts.request) has answered the request
// itself: here a plugin's onRequest that never settles, past middleware.plugin_timeout. The 408 is written by the
// listener beside the driver (listeners/h2-guard.ts, outside-answer.ts) and its stream stays open while a client's
// window holds its body back; the phase's error reply (sendError) then destroyed that stream (RST_STREAM NO_ERROR,
// the 408's body never sent) and the request was logged with the hook's error. The client gets the 408 whole, and the
// access log says what it got: 408 REQUEST_TIMEOUT. Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineGateway, releaseHeld408, sendHeldUpload } from '../helpers/h2-deadline.js';
import { rawH2 } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';

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
    // The hook times out meanwhile (at 1.5 s); then the client opens its window and the 408's body goes out.
    const { logged, body, reset } = await releaseHeld408(client, gw, '/hooked', 1_500);
    assert.match(body, /"code":"request_timeout"/, `the client got the 408 body (reset: ${reset})`);
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT', `and its error (line: ${JSON.stringify(logged)})`);
  } finally {
    client.socket.destroy();
  }
});
