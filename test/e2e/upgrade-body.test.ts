// HTTP/1.1 Upgrade requests and the bytes behind their head, through real sockets: a declared body (Content-Length,
// chunked) is refused with 400 before any byte goes upstream (node hands such a body over unparsed, as the first
// bytes of the tunnel); only WebSocket is tunnelled (h2c, TLS and any other token are ignored: the request is served
// as a plain one); when the upstream does not switch, nothing the client sent after its head reaches any upstream and
// the client's connection is closed, a half-open one included. Over HTTP/2 an Upgrade is malformed: the stream is reset.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { parseHead } from '../helpers/raw.js';
import { field, frame } from '../helpers/h2-frames.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Every chunk an upstream received, in order, with the number of the connection it came on. */
interface Received {
  readonly conn: number;
  readonly bytes: Buffer;
}

/**
 * A raw upstream that switches whenever asked: 101 to `Upgrade: websocket` on /ws*, 101 to any `Upgrade` naming h2c
 * (a lenient h2c server: no HTTP2-Settings needed), 426 (keep-alive) on /refuse*, 200 (keep-alive) to anything else,
 * and it answers every request head it reads on a connection until that connection switches.
 */
let switching: NetServer;
const switchingLog: Received[] = [];
/** A node:http upstream without an 'upgrade' listener: it serves an Upgrade as a plain request, and keeps alive. */
let plain: HttpServer;
const plainLog: Received[] = [];
const plainServed: string[] = [];
let gw: InProcessGateway;

function answer(head: string): { reply: string; switched: boolean } {
  const path = head.split(' ')[1] ?? '';
  if (/^upgrade:\s*websocket\s*$/im.test(head) && path.startsWith('/ws')) {
    return { reply: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', switched: true };
  }
  if (/^upgrade:.*h2c/im.test(head)) return { reply: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n', switched: true };
  if (path.startsWith('/refuse')) return { reply: 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno', switched: false };
  const body = `seen ${path}`;
  return { reply: `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`, switched: false };
}

before(async () => {
  let conns = 0;
  switching = createNetServer((socket: Socket) => {
    const conn = ++conns;
    let pending = '';
    let switched = false;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      switchingLog.push({ conn, bytes: chunk });
      if (switched) return;
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1 && !switched; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const next = answer(head);
        switched = next.switched;
        socket.write(next.reply);
      }
    });
  });
  let plainConns = 0;
  plain = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      plainServed.push(`${req.method} ${req.url}`);
      res.end(`served ${req.url}`);
    });
  });
  plain.on('connection', (socket: Socket) => {
    const conn = ++plainConns;
    socket.on('data', (chunk: Buffer) => plainLog.push({ conn, bytes: chunk }));
  });
  await new Promise<void>((resolve) => switching.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'switching', address: '127.0.0.1', port: (switching.address() as { port: number }).port }] },
    services: {
      plain: { upstreams: [{ name: 'plain', address: '127.0.0.1', port: (plain.address() as { port: number }).port }], health_check: { enabled: false } },
    },
    routes: [
      { name: 'plain', match: { path_prefix: '/node' }, service: 'plain' },
      { name: 'switching', match: { path_prefix: '/' }, service: 'default' },
    ],
  });
});

after(async () => {
  await gw.close();
  plain.closeAllConnections();
  await new Promise((resolve) => plain.close(resolve));
  await new Promise((resolve) => switching.close(resolve));
});

/** What an upstream received since `mark` (an index into its log), joined per connection, in connection order. */
function since(log: readonly Received[], mark: number): string[] {
  const byConn = new Map<number, Buffer[]>();
  for (const { conn, bytes } of log.slice(mark)) {
    const list = byConn.get(conn) ?? [];
    list.push(bytes);
    byConn.set(conn, list);
  }
  return [...byConn.values()].map((chunks) => Buffer.concat(chunks).toString('latin1'));
}

interface Exchange {
  /** Everything the client received. */
  readonly data: string;
  /** The gateway closed the connection within the wait. */
  readonly closed: boolean;
}

/**
 * Writes `parts` (a pause between them, so that each arrives on its own) and collects what comes back until the
 * gateway closes the connection, or `waitMs` has passed since the last write (then `closed` is false).
 */
async function exchange(parts: readonly string[], waitMs = 1_500): Promise<Exchange> {
  const socket = netConnect(gw.gateway.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let data = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (data += chunk));
  socket.on('error', () => undefined);
  const done = new Promise<void>((resolve) => socket.once('close', () => resolve(void (closed = true))));
  for (const [i, part] of parts.entries()) {
    if (i > 0) await sleep(50);
    socket.write(part);
  }
  await Promise.race([done, sleep(waitMs)]);
  socket.destroy();
  return { data, closed };
}

/** The status, headers and body of the one response in `data`. */
function response(data: string): { status: number; headers: Record<string, string>; body: string } {
  const split = data.indexOf('\r\n\r\n');
  assert.notEqual(split, -1, `a response head: ${JSON.stringify(data)}`);
  return { ...parseHead(data.slice(0, split)), body: data.slice(split + 4) };
}

/** The request head the gateway sends upstream for a bodiless GET, byte for byte (undici's order of fields). */
function forwardedHead(path: string, requestId: string, upgrade: string | undefined): string {
  const connection = upgrade === undefined ? 'connection: keep-alive\r\n' : `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  return (
    `GET ${path} HTTP/1.1\r\nhost: a.test\r\n${connection}x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n` +
    `x-forwarded-host: a.test\r\nx-request-id: ${requestId}\r\n\r\n`
  );
}

const upgradeHead = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

/** The body of the first test's requests, and a request behind it that must never be read as one. */
const SMUGGLED = 'GET /node/admin-only HTTP/1.1\r\nHost: a.test\r\n\r\n';

describe('an Upgrade request that declares a body is refused before anything goes upstream', () => {
  const cases: Array<[string, readonly string[]]> = [
    ['Content-Length', [upgradeHead('/ws', 'Content-Length: 5\r\n') + 'BODY!' + 'TUNNEL']],
    ['Content-Length, the body in later packets', [upgradeHead('/ws', 'Content-Length: 5\r\n'), 'BO', 'DY!TUNNEL']],
    ['chunked', [upgradeHead('/ws', 'Transfer-Encoding: chunked\r\n') + '5\r\nBODY!\r\n0\r\n\r\n' + 'TUNNEL']],
    ['Content-Length, to an upstream that refuses upgrades', [upgradeHead('/refuse', 'Content-Length: 5\r\n') + 'BODY!' + SMUGGLED]],
    ['a body that spells a request, to a keep-alive upstream', [upgradeHead('/node/ws', `Content-Length: ${SMUGGLED.length}\r\n`) + SMUGGLED]],
    ['a chunked body that spells a request', [upgradeHead('/node/ws', 'Transfer-Encoding: chunked\r\n') + `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`]],
  ];
  for (const [name, parts] of cases) {
    test(name, async () => {
      const marks = [switchingLog.length, plainLog.length, plainServed.length] as const;
      const { data, closed } = await exchange(parts);
      const res = response(data);
      assert.equal(res.status, 400, data);
      assert.equal(res.headers.connection, 'close');
      assert.ok(res.headers['x-request-id'], 'the gateway headers');
      assert.deepEqual(JSON.parse(res.body), {
        error: 'Bad Request',
        code: 'bad_request',
        request_id: res.headers['x-request-id'],
        details: 'an Upgrade request has no body',
      });
      assert.equal(closed, true, 'the connection is closed after the 400');
      assert.deepEqual(since(switchingLog, marks[0]), [], 'nothing reached the switching upstream');
      assert.deepEqual(since(plainLog, marks[1]), [], 'nothing reached the keep-alive upstream');
      assert.deepEqual(plainServed.slice(marks[2]), []);
    });
  }

  test('the keep-alive upstream then serves another client exactly its own request', async () => {
    const marks = [plainLog.length, plainServed.length] as const;
    await exchange([upgradeHead('/node/ws', `Content-Length: ${SMUGGLED.length}\r\n`) + SMUGGLED]);
    const { data } = await exchange(['GET /node/next HTTP/1.1\r\nHost: a.test\r\n\r\n'], 500);
    const res = response(data);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'served /node/next');
    assert.deepEqual(since(plainLog, marks[0]).join(''), forwardedHead('/node/next', res.headers['x-request-id']!, undefined));
    assert.deepEqual(plainServed.slice(marks[1]), ['GET /node/next']);
  });

  test('Content-Length: 0 is no body: the upgrade is switched, and bytes after the head go into the tunnel', async () => {
    const mark = switchingLog.length;
    const { data, closed } = await exchange([upgradeHead('/ws', 'Content-Length: 0\r\n') + 'TUNNEL'], 300);
    const res = response(data);
    assert.equal(res.status, 101);
    assert.equal(closed, false);
    assert.deepEqual(since(switchingLog, mark), [forwardedHead('/ws', res.headers['x-request-id']!, 'websocket') + 'TUNNEL']);
  });
});

describe('an upgrade the upstream refuses', () => {
  test('nothing after the head reaches any upstream, and the connection is closed after the response', async () => {
    const marks = [switchingLog.length, plainLog.length] as const;
    const { data, closed } = await exchange([upgradeHead('/refuse') + SMUGGLED, 'GET /later HTTP/1.1\r\nHost: a.test\r\n\r\n']);
    const res = response(data);
    assert.equal(res.status, 426);
    assert.equal(res.body, 'no', 'one response, nothing after it');
    assert.equal(res.headers.connection, 'close');
    assert.equal(closed, true);
    assert.deepEqual(since(switchingLog, marks[0]), [forwardedHead('/refuse', res.headers['x-request-id']!, 'websocket')]);
    assert.deepEqual(since(plainLog, marks[1]), []);
  });

  test('a node:http upstream serving the Upgrade as a plain request: only the head reaches it', async () => {
    const marks = [plainLog.length, plainServed.length] as const;
    const { data, closed } = await exchange([upgradeHead('/node/ws') + SMUGGLED]);
    const res = response(data);
    assert.equal(res.status, 200);
    assert.match(res.body, /served \/node\/ws/);
    assert.equal(closed, true);
    assert.deepEqual(since(plainLog, marks[0]), [forwardedHead('/node/ws', res.headers['x-request-id']!, 'websocket')]);
    assert.deepEqual(plainServed.slice(marks[1]), ['GET /node/ws']);
  });

  test('a client that keeps its half of the connection open is closed too', { timeout: 20_000 }, async () => {
    const connections = async (): Promise<number> => ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
    await waitFor(async () => (await connections()) === 0, 'no client connection left from earlier tests');
    const mark = switchingLog.length;
    const socket = netConnect({ port: gw.gateway.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    try {
      socket.write(upgradeHead('/refuse'));
      await waitFor(() => data.includes('\r\n\r\nno'), 'the 426');
      // Still sending, and never closing its side: what it sends goes nowhere, and the gateway lets go of it.
      socket.write(SMUGGLED);
      await waitFor(async () => (await connections()) === 0, 'the gateway to close the connection', 12_000);
      assert.deepEqual(since(switchingLog, mark), [forwardedHead('/refuse', response(data).headers['x-request-id']!, 'websocket')]);
    } finally {
      socket.destroy();
    }
  });
});

describe('only WebSocket is tunnelled: any other Upgrade is served as a plain request', () => {
  const h2cSettings = 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
  const cases: Array<[string, string]> = [
    ['h2c with HTTP2-Settings', `GET /h2c HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n${h2cSettings}\r\n`],
    ['h2c without HTTP2-Settings', 'GET /h2c HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'],
    ['TLS/1.0 (RFC 2817)', 'GET /h2c HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0, h2c\r\n\r\n'],
  ];
  for (const [name, head] of cases) {
    test(name, async () => {
      const mark = switchingLog.length;
      // A client may send the HTTP/2 preface at once: it must reach nothing.
      const { data, closed } = await exchange([head + 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']);
      const res = response(data);
      assert.equal(res.status, 200, data);
      assert.equal(res.body, 'seen /h2c');
      assert.equal(res.headers.connection, 'close');
      assert.equal(closed, true);
      assert.deepEqual(since(switchingLog, mark), [forwardedHead('/h2c', res.headers['x-request-id']!, undefined)]);
    });
  }

  test('a list naming websocket among others is a WebSocket upgrade, and only websocket is asked for', async () => {
    const mark = switchingLog.length;
    const head = 'GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: h2c, WebSocket\r\n\r\n';
    const { data, closed } = await exchange([head + 'TUNNEL'], 300);
    const res = response(data);
    assert.equal(res.status, 101);
    assert.equal(closed, false);
    assert.deepEqual(since(switchingLog, mark), [forwardedHead('/ws', res.headers['x-request-id']!, 'websocket') + 'TUNNEL']);
  });
});

describe('HTTP/2', () => {
  const pki = pkiDir();
  let tlsGw: InProcessGateway;
  const ca = createTestCa('Upgrade CA', pki.path);

  before(async () => {
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    tlsGw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      load_balancing: { upstreams: [{ name: 'switching', address: '127.0.0.1', port: (switching.address() as { port: number }).port }] },
    });
  });

  after(async () => {
    await tlsGw.close();
    pki.remove();
  });

  test('a request with an Upgrade (or extended CONNECT) is malformed: its stream is reset, the session goes on', async () => {
    const mark = switchingLog.length;
    const socket = tlsConnect({ port: tlsGw.gateway.port, host: '127.0.0.1', ca: ca.ca, servername: 'a.test', ALPNProtocols: ['h2'] });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    const request = (method: string, extra: Array<[string, string]>): Buffer =>
      Buffer.concat([field(':method', method), field(':scheme', 'https'), field(':authority', 'a.test'), field(':path', '/ws'), ...extra.map(([n, v]) => field(n, v))]);
    const END_STREAM_HEADERS = 0x5;
    try {
      socket.write(
        Buffer.concat([
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
          frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
          frame(1, END_STREAM_HEADERS, 1, request('GET', [['upgrade', 'websocket']])),
          frame(1, END_STREAM_HEADERS, 3, request('GET', [['connection', 'upgrade'], ['upgrade', 'h2c']])),
          frame(1, END_STREAM_HEADERS, 5, request('CONNECT', [[':protocol', 'websocket']])),
          frame(1, END_STREAM_HEADERS, 7, request('GET', [])),
        ]),
      );
      /** Frames received: type and stream, and the error code of a RST_STREAM. */
      const frames = (): Array<{ type: number; stream: number; code?: number }> => {
        const out: Array<{ type: number; stream: number; code?: number }> = [];
        for (let at = 0; at + 9 <= received.length; ) {
          const length = received.readUIntBE(at, 3);
          if (at + 9 + length > received.length) break;
          const type = received[at + 3]!;
          const stream = received.readUInt32BE(at + 5) & 0x7fffffff;
          out.push(type === 3 ? { type, stream, code: received.readUInt32BE(at + 9) } : { type, stream });
          at += 9 + length;
        }
        return out;
      };
      await waitFor(() => frames().some((f) => f.type === 1 && f.stream === 7), 'the answer on stream 7');
      const resets = frames().filter((f) => f.type === 3);
      const PROTOCOL_ERROR = 1;
      assert.deepEqual(resets, [1, 3, 5].map((stream) => ({ type: 3, stream, code: PROTOCOL_ERROR })));
      assert.ok(!frames().some((f) => f.type === 7), 'no GOAWAY: the session goes on');
      // Only the plain request reached the upstream, without any upgrade.
      const upstream = since(switchingLog, mark);
      assert.equal(upstream.length, 1);
      assert.match(upstream[0]!, /^GET \/ws HTTP\/1\.1\r\nhost: a\.test\r\nconnection: keep-alive\r\n/);
      assert.doesNotMatch(upstream[0]!, /upgrade/i);
    } finally {
      socket.destroy();
    }
  });
});
