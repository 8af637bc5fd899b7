// HTTP/2 abuse: a rapid-reset attacker (CVE-2023-44487) is cut off, while a well-behaved h2 client on the same
// gateway keeps getting answers; the stream limit is advertised to clients.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, type ClientHttp2Session } from 'node:http2';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Abuse CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('abuse-backend');
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, http2_max_concurrent_streams: 50 },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
});

after(async () => {
  await gw?.close();
  await backend?.stop();
  pki.remove();
});

/** Open client connections as the gateway counts them (/api/status). */
async function connections(): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
}

test('the stream limit from server.http2_max_concurrent_streams is advertised', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    // After one round trip the server's SETTINGS frame has surely been read.
    assert.equal((await h2request(session, { ':path': '/echo', ':method': 'GET' })).status, 200);
    assert.equal(session.remoteSettings.maxConcurrentStreams, 50);
  } finally {
    session.close();
  }
});

test('rapid reset: the attacking connection is closed; a normal client keeps its answers', async () => {
  await waitFor(async () => (await connections()) === 0, 'no connection left from the previous test');
  const normal = await h2connect(gw.gateway.port, ca.ca);
  const attacker: ClientHttp2Session = await h2connect(gw.gateway.port, ca.ca);
  attacker.on('error', () => undefined);
  let goawayCode: number | undefined;
  attacker.on('goaway', (code: number) => (goawayCode = code));
  let normalOk = 0;
  const normalFailures: string[] = [];
  let attacking = true;
  // The well-behaved client asks continuously while the attack runs.
  const normalLoop = (async () => {
    while (attacking) {
      try {
        // A generous bound: in this in-process run a request in flight while the attack is cut off has taken up to
        // ~8 s (see the report of issue 11); it must still be answered, not failed.
        const res = await h2request(normal, { ':path': '/echo', ':method': 'GET' }, undefined, 20_000);
        if (res.status === 200) normalOk++;
        else normalFailures.push(String(res.status));
      } catch (err) {
        normalFailures.push((err as Error).message);
      }
    }
  })();
  const refused = () => gw.logs.some((l) => l.msg === 'HTTP2 Connection Refused');
  let sent = 0;
  try {
    assert.equal(await connections(), 2);
    // Open a stream and reset it at once, in bursts below the stream limit (thousands per second).
    while (!attacker.closed && !attacker.destroyed && !refused() && sent < 5_000) {
      for (let i = 0; i < 40 && !attacker.destroyed && !attacker.closed; i++) {
        try {
          const stream = attacker.request({ ':path': '/echo?attack=1', ':method': 'GET' });
          stream.on('error', () => undefined);
          stream.close(constants.NGHTTP2_CANCEL);
          sent++;
        } catch {
          break; // the session is going away
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(refused(), `the gateway says why it closes the connection (after ${sent} resets)`);
    assert.ok(sent < 1_000, `cut off after ${sent} resets`);
    // The gateway's side of the attacker's connection is gone; only the normal client's is left. The GOAWAY
    // (ENHANCE_YOUR_CALM) is queued first, but node 20 does not always flush it before the socket is cut, and
    // node's own client may not notice the cut while it writes: the gateway's connection count is the judge.
    await waitFor(async () => (await connections()) === 1, 'the attacking connection to close', 3_000);
    if (goawayCode !== undefined) assert.equal(goawayCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  } finally {
    attacking = false;
    await normalLoop;
    attacker.destroy();
  }
  // The normal client's connection was never touched, and answers still come.
  assert.deepEqual(normalFailures, []);
  assert.ok(normalOk > 0);
  assert.equal((await h2request(normal, { ':path': '/echo', ':method': 'GET' })).status, 200);
  normal.close();
});
