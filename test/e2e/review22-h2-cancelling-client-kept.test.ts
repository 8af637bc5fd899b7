// An HTTP/2 client that cancels many streams honestly keeps its connection. The rapid-reset guard (CVE-2023-44487)
// sent GOAWAY to any client resetting more than 100 streams within a second: a gRPC channel whose calls met their
// deadlines together behind a slow upstream, or a load balancer multiplexing its users' cancellations, lost every
// call it still had open. The guard now judges the share of premature resets (streams reset within 1 s of opening)
// among the connection's streams, as Envoy does. (nghttp2's own bucket, 1000 resets and 33 more a second, still
// applies: node 20 offers no way to set it.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { sleep } from '../helpers/wait.js';

const pki = pkiDir();
let backend: Server;
let gw: InProcessGateway;
let ca: Buffer;

before(async () => {
  // /fast answers at once; /slow after 3 s, longer than any client here waits.
  backend = createServer((req, res) => {
    if (req.url?.startsWith('/slow')) {
      const timer = setTimeout(() => res.end('late'), 3_000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.end('ok');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const testCa = createTestCa('Cancelling Client CA', pki.path);
  ca = testCa.ca;
  const cert = testCa.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, http2_max_concurrent_streams: 500 },
    services: { api: { upstreams: upstreams([(backend.address() as AddressInfo).port]), health_check: { enabled: false } } },
    // No route for anything else: a 404 the gateway answers itself, the cheapest stream a client can ask for.
    routes: [
      { name: 'fast', match: { path_prefix: '/fast' }, service: 'api' },
      { name: 'slow', match: { path_prefix: '/slow' }, service: 'api' },
    ],
  });
});

after(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  backend?.close();
  pki.remove();
});

function session(): { s: ClientHttp2Session; goaway: () => number | undefined } {
  const s = connect(`https://127.0.0.1:${gw.gateway.port}`, { ca, servername: 'a.test' });
  s.on('error', () => undefined);
  let code: number | undefined;
  s.on('goaway', (c: number) => (code ??= c));
  return { s, goaway: () => code };
}

function status(s: ClientHttp2Session, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const stream = s.request({ ':path': path }, { endStream: true });
    let got: number | undefined;
    stream.on('response', (h) => (got = Number(h[':status'])));
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('close', () => resolve(got));
  });
}

/** Opens a stream to `path` and cancels it after `afterMs`, as a client's deadline does; resolves once closed. */
function cancelled(s: ClientHttp2Session, path: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || s.closed) return resolve();
    const stream = s.request({ ':path': path }, { endStream: true });
    stream.on('error', () => undefined);
    const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), afterMs);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const refusals = (from: number) => gw.logs.slice(from).filter((l) => l.msg === 'HTTP2 Connection Refused');

test('600 calls answered, then 300 cancelled at a 200 ms deadline within a second: the connection serves on', async () => {
  const { s, goaway } = session();
  const logged = gw.logs.length;
  try {
    for (let batch = 0; batch < 6; batch++) {
      const answered = await Promise.all(Array.from({ length: 100 }, (_, i) => status(s, `/fast/${batch}-${i}`)));
      assert.ok(answered.every((x) => x === 200), `batch ${batch}`);
    }
    await Promise.all(Array.from({ length: 300 }, (_, i) => cancelled(s, `/slow/${i}`, 200)));
    assert.equal(await status(s, '/fast/after'), 200, 'the connection serves on');
    assert.equal(goaway(), undefined, 'no GOAWAY');
    assert.deepEqual(refusals(logged), []);
  } finally {
    s.close();
  }
});

test('400 calls cancelled within a second, each after 1.1 s (past the premature bound): the connection serves on', async () => {
  const { s, goaway } = session();
  const logged = gw.logs.length;
  const calls: Promise<void>[] = [];
  try {
    // 40 every 100 ms for a second; their resets come as spread, 1.1 s later.
    for (let tick = 0; tick < 10 && !s.destroyed && !s.closed; tick++) {
      for (let i = 0; i < 40; i++) calls.push(cancelled(s, `/slow/${tick}-${i}`, 1_100));
      await sleep(100);
    }
    await Promise.all(calls);
    assert.equal(goaway(), undefined, 'no GOAWAY');
    assert.equal(await status(s, '/fast/after'), 200, 'the connection serves on');
    assert.deepEqual(refusals(logged), []);
  } finally {
    s.close();
  }
});

test('control: a client that resets every stream as it opens it is sent GOAWAY ENHANCE_YOUR_CALM, the shares logged', async () => {
  const { s, goaway } = session();
  const logged = gw.logs.length;
  try {
    assert.equal(await status(s, '/fast/first'), 200); // settings exchanged
    for (let i = 0; i < 400 && !s.destroyed && !s.closed; i++) {
      const stream = s.request({ ':path': `/slow/reset-${i}` }, { endStream: true });
      stream.on('error', () => undefined);
      stream.close(constants.NGHTTP2_CANCEL);
    }
    const deadline = Date.now() + 5_000;
    while (goaway() === undefined && Date.now() < deadline) await sleep(20);
    assert.equal(goaway(), constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const [line] = refusals(logged);
    assert.ok(line !== undefined, 'logged');
    assert.equal(line.premature_resets, 250);
    assert.ok(typeof line.streams_closed === 'number' && line.streams_closed < 500, JSON.stringify(line));
  } finally {
    s.destroy();
  }
});

test('a client mixing two cheap requests into each reset (its share kept under half) is refused past its burst of 900 resets', async () => {
  // Found by the fix review: the share alone let such a client start about a thousand upstream requests a second.
  const { s, goaway } = session();
  const logged = gw.logs.length;
  try {
    assert.equal(await status(s, '/fast/first'), 200); // settings exchanged
    const started = Date.now();
    for (let round = 0; round < 30 && goaway() === undefined && !s.destroyed && !s.closed; round++) {
      const cheap: Promise<number | undefined>[] = [];
      for (let i = 0; i < 50 && !s.destroyed && !s.closed; i++) {
        cheap.push(status(s, `/none/${round}-${i}-a`), status(s, `/none/${round}-${i}-b`));
        const stream = s.request({ ':path': `/slow/mixed-${round}-${i}` }, { endStream: true });
        stream.on('error', () => undefined);
        stream.close(constants.NGHTTP2_CANCEL);
      }
      await Promise.all(cheap);
    }
    const deadline = Date.now() + 5_000;
    while (goaway() === undefined && Date.now() < deadline) await sleep(20);
    assert.equal(goaway(), constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const [line] = refusals(logged);
    assert.ok(line !== undefined, 'logged');
    // The burst, and what refilled (30 a second) while it was spent: about 2 s here, 8 s on a loaded machine.
    const refilled = (30 * (Number(line.time) - started)) / 1_000;
    assert.ok(typeof line.premature_resets === 'number' && line.premature_resets > 900 && line.premature_resets < 950 + refilled, `${JSON.stringify(line)}, ${Math.round(refilled)} refilled`);
  } finally {
    s.destroy();
  }
});
