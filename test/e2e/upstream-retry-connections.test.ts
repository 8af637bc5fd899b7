// Retries decided by what happened to the connection, through real sockets: a keep-alive connection the upstream
// closed as a request went out (HTTP/1.1, FIN or RST), a chunked or HTTP/2 body on a route with max_body_size
// failing over after a refused connection, and an HTTP/2 upstream's REFUSED_STREAM and GOAWAY (RFC 9113 §8.7).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { sleep } from '../helpers/wait.js';
import { frame } from '../helpers/h2-frames.js';

const closers: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function gateway(input: ConfigInput): Promise<InProcessGateway> {
  const gw = await startInProcess(input);
  closers.push(() => gw.close());
  return gw;
}

async function listening(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

const count = (gw: InProcessGateway, msg: string): number => gw.logs.filter((l) => l.msg === msg).length;

/** One request on a fresh client connection; the body, when given, is written in chunks (chunked encoding). */
function send(url: string, method: string, body?: { chunks: string[]; length?: boolean }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const all = body?.chunks.join('') ?? '';
    const headers = body?.length ? { 'content-length': String(Buffer.byteLength(all)) } : {};
    const req = http.request(url, { method, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    if (body === undefined) return void req.end();
    void (async () => {
      for (const chunk of body.chunks) {
        req.write(chunk);
        await sleep(10);
      }
      req.end();
    })();
  });
}

/**
 * An HTTP/1.1 backend that answers the first request on each connection (keep-alive, no Connection: close) and
 * drops the connection at the next request head, as a server whose keep-alive timeout fired at that moment does:
 * `fin` ends it, else it is reset. Every request head it saw is recorded, with the bytes of body that came with it.
 */
async function agingBackend(fin: boolean): Promise<{ port: number; heads: string[]; served: string[] }> {
  const heads: string[] = [];
  const served: string[] = [];
  const server = net.createServer((socket) => {
    let answered = false;
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.slice(0, end);
      if (answered) {
        heads.push(`dropped ${head.split('\r\n')[0]}`);
        if (fin) socket.end();
        else socket.resetAndDestroy();
        return;
      }
      // Wait for a declared body to arrive whole before answering.
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const chunked = /transfer-encoding: *chunked/i.test(head);
      const rest = buffered.slice(end + 4);
      if (rest.length < length || (chunked && !rest.endsWith('0\r\n\r\n'))) return;
      answered = true;
      buffered = '';
      heads.push(`served ${head.split('\r\n')[0]}`);
      served.push(rest);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  const port = await listening(server);
  return { port, heads, served };
}

describe('a reused keep-alive connection the upstream closed as the request went out', () => {
  for (const fin of [true, false]) {
    const how = fin ? 'FIN (undici: other side closed)' : 'RST (ECONNRESET)';
    test(`${how}: GETs to the only upstream, retries 0, all succeed on a new connection; nothing against its health`, async () => {
      const backend = await agingBackend(fin);
      // One connection in the pool: the retry cannot pick another pooled connection the backend has also aged out
      // (the retry takes whatever the pool gives; see README, Retries).
      const gw = await gateway({
        load_balancing: { retries: 0, connections_per_upstream: 1, upstreams: [{ name: 'only', address: '127.0.0.1', port: backend.port }] },
      });
      for (let i = 0; i < 6; i++) {
        const res = await send(`${gw.url}/get/${i}`, 'GET');
        assert.equal(res.status, 200, `request ${i}: ${res.text}`);
      }
      assert.ok(backend.heads.some((h) => h.startsWith('dropped')), 'the pooled connection was reused and dropped');
      assert.equal(count(gw, 'Upstream Down'), 0);
      assert.ok(count(gw, 'Upstream Retry') >= 1);
      const status = (await fetch(`${gw.adminUrl}/api/status`).then((r) => r.json())) as { upstreams: Array<{ health: string }> };
      assert.deepEqual(status.upstreams.map((u) => u.health), ['healthy']);
    });
  }

  test('a POST whose body went out on the dropped connection is not replayed (RFC 9110): 502, and still nothing against health', async () => {
    const backend = await agingBackend(true);
    const gw = await gateway({ load_balancing: { retries: 1, upstreams: [{ name: 'only', address: '127.0.0.1', port: backend.port }] } });
    assert.equal((await send(`${gw.url}/warm`, 'GET')).status, 200);
    const res = await send(`${gw.url}/pay`, 'POST', { chunks: ['amount=1'], length: true });
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.text).code, 'upstream_reset');
    assert.deepEqual(backend.heads.filter((h) => h.includes('/pay')), ['dropped POST /pay HTTP/1.1']);
    assert.equal(count(gw, 'Upstream Down'), 0);
    assert.equal((await send(`${gw.url}/after`, 'GET')).status, 200, 'the upstream is still in rotation');
  });

  test('an upstream that resets every new connection still fails fast and is marked down', async () => {
    let accepted = 0;
    const server = net.createServer((socket) => {
      accepted++;
      socket.on('error', () => {});
      socket.once('data', () => socket.resetAndDestroy());
    });
    const port = await listening(server);
    const gw = await gateway({ load_balancing: { retries: 1, upstreams: [{ name: 'only', address: '127.0.0.1', port }] } });
    const res = await send(`${gw.url}/x`, 'GET');
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.text).code, 'upstream_reset');
    // Fast means one attempt, not a series of them: counted, not timed (a loaded machine's clock says little).
    assert.equal(accepted, 1, 'no retry on the only upstream for a failure that blames it');
    assert.equal(count(gw, 'Upstream Down'), 1);
  });
});

describe('max_body_size keeps failover for streamed bodies', () => {
  let gw: InProcessGateway;
  let seen: string[];
  let pki: ReturnType<typeof pkiDir>;
  let ca: TestCa;

  before(async () => {
    seen = [];
    const good = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        seen.push(body);
        res.end(`good:${body}`);
      });
    });
    const goodPort = await listening(good);
    const closed = await freePort();
    pki = pkiDir();
    closers.push(() => pki.remove());
    ca = createTestCa('Body limit CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    gw = await gateway({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      load_balancing: {
        retries: 1,
        strategy: 'round_robin',
        upstreams: [
          { name: 'closed', address: '127.0.0.1', port: closed },
          { name: 'good', address: '127.0.0.1', port: goodPort },
        ],
        health_check: { passive_cooldown: '1ms' },
      },
      routes: [{ name: 'limited', match: { path_prefix: '/' }, service: 'default', max_body_size: '1MB' }],
    });
  });

  test('HTTP/1.1 chunked: every POST that met the refused port is retried with its whole body', async () => {
    const { request } = await import('node:https');
    for (let i = 0; i < 4; i++) {
      seen.length = 0;
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(`${gw.url.replace('http:', 'https:')}/u`, { method: 'POST', ca: ca.ca, servername: 'a.test', agent: false }, (r) => {
          let text = '';
          r.on('data', (d: Buffer) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        void (async () => {
          for (const c of ['aaaa|', 'bbbb|', 'cccc']) {
            req.write(c);
            await sleep(20);
          }
          req.end();
        })();
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.text, 'good:aaaa|bbbb|cccc');
      assert.deepEqual(seen, ['aaaa|bbbb|cccc']);
    }
    assert.ok(count(gw, 'Upstream Retry') >= 1, 'the closed port was met');
  });

  test('HTTP/2 DATA without content-length: retried with its whole body', async () => {
    const session = await h2connect(Number(new URL(gw.url).port), ca.ca);
    try {
      const retriesBefore = count(gw, 'Upstream Retry');
      for (let i = 0; i < 4; i++) {
        seen.length = 0;
        const res = await h2request(session, { ':method': 'POST', ':path': '/h2' }, 'h2-body-' + i);
        assert.equal(res.status, 200, res.body.toString());
        assert.equal(res.body.toString(), `good:h2-body-${i}`);
        assert.deepEqual(seen, [`h2-body-${i}`]);
      }
      assert.ok(count(gw, 'Upstream Retry') > retriesBefore, 'the closed port was met');
    } finally {
      session.close();
    }
  });
});

/** An h2c backend: `refuse(path)` says whether to refuse the stream (REFUSED_STREAM) instead of answering. */
async function h2Backend(name: string, refuse: (path: string) => boolean): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const line = `${headers[':method']} ${headers[':path']}`;
    stream.on('error', () => {});
    if (refuse(String(headers[':path']))) {
      seen.push(`refused ${line}`);
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    let body = '';
    stream.on('data', (d: Buffer) => (body += d));
    stream.on('end', () => {
      seen.push(`served ${line}`);
      stream.respond({ ':status': 200 });
      stream.end(`${name}:${body}`);
    });
  });
  server.on('sessionError', () => {});
  const port = await listening(server as unknown as net.Server);
  closers.push(() => {
    server.close();
  });
  return { port, seen };
}

/**
 * A bare-bones h2c server that sends GOAWAY (NO_ERROR) with `lastStreamId(streamId)` as its last stream id on the
 * first request HEADERS it sees, then closes. node's own session.goaway() cannot say "below": it replaces a last
 * stream id of 0 by the last stream it processed, so this speaks the frames itself.
 */
async function goawayBackend(lastStreamId: (streamId: number) => number): Promise<{ port: number; headers: number[] }> {
  const headers: number[] = [];
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    let prefaced = false;
    socket.on('error', () => {});
    socket.write(frame(4, 0, 0, Buffer.alloc(0))); // our SETTINGS
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!prefaced) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        prefaced = true;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) return;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + length);
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0))); // SETTINGS ack
        if (type === 1) {
          headers.push(stream);
          const payload = Buffer.alloc(8);
          payload.writeUInt32BE(Math.max(0, lastStreamId(stream)), 0);
          socket.end(frame(7, 0, 0, payload));
          return;
        }
      }
    });
  });
  const port = await listening(server);
  return { port, headers };
}

describe('HTTP/2 upstream: REFUSED_STREAM and GOAWAY', () => {
  test('REFUSED_STREAM: GET, DELETE and a bodiless POST are retried on the next upstream; no health failure', async () => {
    const bad = await h2Backend('a', () => true);
    const good = await h2Backend('b', () => false);
    const gw = await gateway({
      load_balancing: {
        http2: true,
        retries: 1,
        strategy: 'round_robin',
        upstreams: [
          { name: 'a', address: '127.0.0.1', port: bad.port },
          { name: 'b', address: '127.0.0.1', port: good.port },
        ],
      },
    });
    for (const method of ['GET', 'DELETE', 'POST', 'GET', 'DELETE', 'POST']) {
      const res = await send(`${gw.url}/${method.toLowerCase()}`, method);
      assert.equal(res.status, 200, `${method}: ${res.text}`);
      assert.equal(res.text, 'b:');
    }
    assert.ok(bad.seen.includes('refused POST /post'), 'a POST met the refusing upstream');
    assert.equal(count(gw, 'Upstream Down'), 0);
  });

  test('REFUSED_STREAM on the only upstream: the retry goes to it again', async () => {
    let refusals = 0;
    const only = await h2Backend('only', () => refusals++ === 0);
    const gw = await gateway({ load_balancing: { http2: true, retries: 1, upstreams: [{ name: 'only', address: '127.0.0.1', port: only.port }] } });
    const res = await send(`${gw.url}/p`, 'POST');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(only.seen, ['refused POST /p', 'served POST /p']);
    assert.equal(count(gw, 'Upstream Down'), 0);
  });

  test('GOAWAY with a last stream id below the request\'s: a bodiless POST is retried; at or above it, it is not', async () => {
    const good = await h2Backend('b', () => false);
    const below = await goawayBackend((id) => id - 2);
    const gwBelow = await gateway({
      load_balancing: {
        http2: true,
        retries: 1,
        strategy: 'round_robin',
        upstreams: [
          { name: 'a', address: '127.0.0.1', port: below.port },
          { name: 'b', address: '127.0.0.1', port: good.port },
        ],
      },
    });
    const retried = await send(`${gwBelow.url}/unprocessed`, 'POST');
    assert.equal(retried.status, 200, retried.text);
    assert.deepEqual(below.headers, [1], 'the first upstream saw the request and refused it with GOAWAY');
    assert.ok(good.seen.includes('served POST /unprocessed'));
    assert.equal(count(gwBelow, 'Upstream Down'), 0, 'a graceful GOAWAY is no health failure');

    const at = await goawayBackend((id) => id);
    const gwAt = await gateway({
      load_balancing: {
        http2: true,
        retries: 1,
        strategy: 'round_robin',
        upstreams: [
          { name: 'a', address: '127.0.0.1', port: at.port },
          { name: 'b', address: '127.0.0.1', port: good.port },
        ],
      },
    });
    const notRetried = await send(`${gwAt.url}/maybe-processed`, 'POST');
    assert.equal(notRetried.status, 502);
    assert.equal(JSON.parse(notRetried.text).code, 'upstream_reset');
    assert.ok(!good.seen.includes('served POST /maybe-processed'), 'a POST the upstream may have processed is not replayed');
    const get = await send(`${gwAt.url}/idempotent`, 'GET');
    assert.equal(get.status, 200, 'an idempotent request still is');
  });
});
