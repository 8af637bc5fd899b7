// An HTTP/2 client that leaves (resets its stream, or drops its connection) stops its upstream request at once, as an
// HTTP/1.1 client does, and the request is logged 499; resets below the rapid-reset limit cannot hold the upstream pool.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { waitFor } from '../helpers/wait.js';

/** How long the upstream takes to answer /hold: far longer than any wait below, so only an abort frees it in time. */
const HOLD_MS = 6_000;
/** Freed "at once": well before the upstream would answer, with room for a loaded machine. */
const AT_ONCE_MS = 1_500;
const POOL = 4;

const pki = pkiDir();
let ca: TestCa;
let upstream: CountingUpstream;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Departure CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = await startCountingUpstream(HOLD_MS);
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    // A small pool with a short queue wait, so held connections show as 503s at once.
    load_balancing: { upstreams: upstreams([upstream.port]), connections_per_upstream: POOL, queue_timeout: '1s' },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  pki.remove();
});

// Each test starts with an idle upstream (before the fix, a test's held requests outlived it by up to HOLD_MS).
beforeEach(() => waitFor(() => upstream.open === 0, 'no upstream request left from the previous test', HOLD_MS + 2_000));

/** The access log's Request Completed line for `path`, if written yet. */
function completed(path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

/** Opens a GET stream on `path`, reading nothing back; errors (the reset) are expected. */
function openStream(session: ClientHttp2Session, path: string): ClientHttp2Stream {
  const stream = session.request({ ':path': path, ':method': 'GET' });
  stream.on('error', () => undefined);
  stream.resume();
  return stream;
}

async function freedAtOnce(what: string): Promise<void> {
  const started = Date.now();
  await waitFor(() => upstream.open === 0, `the upstream to be freed after ${what}`, AT_ONCE_MS);
  assert.ok(Date.now() - started < AT_ONCE_MS);
}

test('an h2 stream reset (CANCEL) aborts its upstream request at once and is logged 499', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const stream = openStream(session, '/hold/reset');
    await waitFor(() => upstream.open === 1, 'the request to reach the upstream');
    stream.close(constants.NGHTTP2_CANCEL);
    await freedAtOnce('the reset');
    await waitFor(() => completed('/hold/reset') !== undefined, 'the access log line');
    assert.equal(completed('/hold/reset')!.status, 499);
  } finally {
    session.destroy();
  }
});

test('an h2 connection that closes aborts every upstream request of its streams at once, each logged 499', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  session.on('error', () => undefined);
  const paths = ['/hold/conn-1', '/hold/conn-2', '/hold/conn-3'];
  for (const path of paths) openStream(session, path);
  await waitFor(() => upstream.open === paths.length, 'the requests to reach the upstream');
  session.destroy();
  await freedAtOnce('the connection closed');
  await waitFor(() => paths.every((p) => completed(p) !== undefined), 'the access log lines');
  assert.deepEqual(paths.map((p) => completed(p)!.status), [499, 499, 499]);
});

test('resets cannot hold the upstream pool: running and queued attempts end at once, a later request is served', async () => {
  const attacker = await h2connect(gw.gateway.port, ca.ca);
  const normal = await h2connect(gw.gateway.port, ca.ca);
  try {
    // Twice the pool: POOL requests hold every connection, POOL more wait in the queue for one.
    const paths = Array.from({ length: 2 * POOL }, (_, i) => `/hold/pool-${i}`);
    const streams = paths.map((p) => openStream(attacker, p));
    await waitFor(() => upstream.open === POOL, 'the pool to be full');
    for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
    // Without the aborts the pool stays full for HOLD_MS and this request waits out queue_timeout: 503.
    const res = await h2request(normal, { ':path': '/served', ':method': 'GET' });
    assert.equal(res.status, 200);
    await freedAtOnce('the resets');
    await waitFor(() => paths.every((p) => completed(p) !== undefined), 'the access log lines');
    assert.deepEqual(
      paths.map((p) => completed(p)!.status),
      paths.map(() => 499),
    );
  } finally {
    attacker.destroy();
    normal.close();
  }
});

// A guard against the opposite mistake (passes before the fix too): a response completed normally is not a departure.
test('a normal h2 response is still logged with its status, and an h2 upload with it', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    assert.equal((await h2request(session, { ':path': '/normal-get', ':method': 'GET' })).status, 200);
    assert.equal((await h2request(session, { ':path': '/normal-post', ':method': 'POST' }, 'x'.repeat(10_000))).status, 200);
    await waitFor(() => completed('/normal-get') !== undefined && completed('/normal-post') !== undefined, 'the access log lines');
    for (const path of ['/normal-get', '/normal-post']) {
      assert.equal(completed(path)!.status, 200);
      assert.equal(completed(path)!.error, undefined);
    }
  } finally {
    session.close();
  }
});
