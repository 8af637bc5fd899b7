// The HTTP/2 stream deadline (server.timeouts.request) answering 408 while an async response hook (a plugin's
// onResponse) holds the upstream's head, unwritten. The 408 is written by the listener beside the driver
// (listeners/h2-guard.ts, outside-answer.ts); 65c8a49 drops an upstream head landing after it (onResponseStart), but a
// head that landed before it and waited for the hook must be dropped too once the hook settles: writing it threw
// ERR_HTTP2_HEADERS_SENT into the hook-failure path, which reset the stream under the 408 (its body never sent) and
// logged the request 500 INTERNAL. A client whose window holds the 408's body back (SETTINGS_INITIAL_WINDOW_SIZE 0)
// keeps the stream open past the hook. Raw TLS h2 client (frames by hand) against a spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadlineGateway, releaseHeld408, sendHeldUpload } from '../helpers/h2-deadline.js';
import { rawH2 } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';

const stack = tlsStackHooks('H2 Deadline Slow Response Hook CA');
const { ca } = stack;

const HOOK = new URL('../plugins/fixtures/slow-response-hook.mjs', import.meta.url).pathname;

test('an upstream head held by a slow response hook past the stream deadline\'s 408 is dropped', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await deadlineGateway(stack, backend.port, {
    plugins: [{ name: 'hook', module: HOOK }],
    middleware: { plugins: ['hook'] },
  });
  const client = await rawH2(gw.port, ca.ca);
  try {
    // An upload that never ends; the upstream answers at once, and the hook holds its head for 2 s.
    sendHeldUpload(client, '/slow?ms=50', [['x-hook-delay', '2000']]);
    // The hook settles meanwhile (at 2 s); then the client opens its window and the 408's body goes out.
    const { logged, body, reset } = await releaseHeld408(client, gw, '/slow', 2_000);
    assert.match(body, /"code":"request_timeout"/, `the client got the 408 body (reset: ${reset})`);
    assert.doesNotMatch(body, /slow/, 'and nothing of the upstream answer');
    assert.equal(logged.status, 408, `logged with the status the client got (line: ${JSON.stringify(logged)})`);
    assert.equal(logged.error, 'REQUEST_TIMEOUT');
    const errors = gw.logs.filter((l) => (l.level as number) >= 50).map((l) => String(l.msg));
    assert.deepEqual(errors, [], 'no error logged');
  } finally {
    client.socket.destroy();
  }
});
