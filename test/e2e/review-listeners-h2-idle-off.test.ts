// server.timeouts.idle: 0 (accepted by the config, "0: off" as every client timeout reads it) and HTTP/2.
// What was wrong: the HTTP/2 idle close armed its timer with timeouts.idle as it stood, so with 0 every new session
// was sent GOAWAY on the next turn of the event loop, before its first request: no HTTP/2 client could be served at
// all (node's own client failed its first request), while HTTP/1.1 on the same port kept its connections (node reads
// a keepAliveTimeout of 0 as no idle bound). What is right now: 0 is no idle bound for HTTP/2 sessions too, as the
// guard's other bounds already read it; a reload to or from 0 applies to the sessions' next idle wait. A session
// that never opens a stream is still let go of: timeouts.header after it opened (GOAWAY, then dropped once the
// closing bound is over), as an HTTP/1.1 connection that never sends its first head gets its 408 at that bound.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { FRAME, clientPreface, rawH2 } from '../helpers/h2-frames.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Idle Off CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('idle-off');
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { idle: 0, header: '1s' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
});

after(async () => {
  await gw?.close();
  await backend?.stop();
  pki.remove();
});

test('timeouts.idle 0: an HTTP/2 session is served, and stays open between requests', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  let goaway: number | undefined;
  session.on('goaway', (code: number) => (goaway = code));
  session.on('error', () => undefined);
  try {
    await sleep(200);
    assert.equal(goaway, undefined, 'no GOAWAY to a session that has not sent a request yet');
    assert.equal((await h2request(session, { ':path': '/echo', ':method': 'GET' })).status, 200);
    // Idle for longer than the sweep's turns (timeouts.header 1 s: every 250 ms): still open, and it answers.
    await sleep(1_500);
    assert.equal(goaway, undefined);
    assert.ok(!session.closed && !session.destroyed, 'the session is still open');
    assert.equal((await h2request(session, { ':path': '/echo', ':method': 'GET' })).status, 200);
  } finally {
    session.destroy();
  }
});

test('timeouts.idle 0: a session that never opens a stream gets GOAWAY at timeouts.header and is let go of', async () => {
  const c = await rawH2(gw.gateway.port, ca.ca);
  try {
    c.send(clientPreface());
    // GOAWAY at timeouts.header (1 s), dropped one closing bound later (1 s, checked every 250 ms): bounds of seconds.
    await waitFor(() => c.closedAfter() !== undefined, 'the silent session to be closed', 8_000);
    assert.ok(c.frames().some((f) => f.type === FRAME.GOAWAY), 'told with GOAWAY first');
    assert.ok(c.closedAfter()! >= 900, `closed ${c.closedAfter()} ms after the handshake, not at once`);
  } finally {
    c.socket.destroy();
  }
});
