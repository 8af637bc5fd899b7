// HTTP/1 framing and methods the gateway cannot pass on as sent, on both sides, over raw sockets (found by review):
// - a request whose Transfer-Encoding is other than chunked alone ("gzip, chunked", two lines, "identity, chunked"):
//   llhttp removes only the chunking, so the upstream got compressed bytes with no coding named. 501, closed;
// - any Transfer-Encoding on an HTTP/1.0 request (RFC 9112 §6.1: faulty framing): it was de-chunked and the
//   connection kept for the next request. 400, closed;
// - TRACE (refused gateway-wide, as nginx does, with CONNECT: 405) and method names llhttp does not know (501, not
//   400 "malformed"); PURGE, which it knows, still goes upstream;
// - an upstream response framed "gzip, chunked": the client got it as plain chunked, gzip bytes unlabelled. 502;
// - an upstream's 101 relayed with its hop-by-hop fields (Keep-Alive, those its Connection named).
// Nothing refused here reaches the upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { parseHead, rawRequest } from '../helpers/raw.js';

/** Requests the upstream received (their heads), and its answer by path: raw bytes, sent whole, then closed. */
interface Recorder {
  readonly port: number;
  readonly heads: string[];
  close(): Promise<void>;
}

async function startRecorder(answers: Readonly<Record<string, string | Buffer>>): Promise<Recorder> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let data = '';
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const head = data.slice(0, end);
      heads.push(head);
      const answer = answers[head.split(' ')[1] ?? ''] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
      socket.end(typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const GZIPPED = gzipSync('hello world');
const GZIP_CHUNKED = Buffer.concat([Buffer.from(`${GZIPPED.length.toString(16)}\r\n`), GZIPPED, Buffer.from('\r\n0\r\n\r\n')]);

let upstream: Recorder;
let gw: InProcessGateway;

before(async () => {
  upstream = await startRecorder({
    '/gzip-chunked': Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), GZIP_CHUNKED]),
    '/gzip-then-chunked': Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n'),
      GZIP_CHUNKED,
    ]),
    '/chunked': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    '/ws':
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal\r\nX-Internal: secret\r\n' +
      'Keep-Alive: timeout=5\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Kept: yes\r\n\r\n',
  });
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'raw', address: '127.0.0.1', port: upstream.port }], retries: 0 } });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Sends `bytes` and returns the parsed first response and everything the gateway wrote until it closed. */
async function exchange(bytes: string | Buffer): Promise<{ status: number; headers: Record<string, string>; all: string }> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(gw.gateway.port, '127.0.0.1', () => socket.write(bytes));
    let all = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the gateway kept the connection open: ${JSON.stringify(all)}`));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => (all += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return reject(new Error(`no response head: ${JSON.stringify(all)}`));
      resolve({ ...parseHead(all.slice(0, end)), all });
    });
  });
}

describe('request framing', () => {
  for (const coding of ['gzip, chunked', 'deflate\r\nTransfer-Encoding: chunked', 'identity, chunked']) {
    test(`Transfer-Encoding ${JSON.stringify(coding)}: 501, the connection closes, nothing goes upstream`, async () => {
      const before = upstream.heads.length;
      const res = await exchange(
        Buffer.concat([Buffer.from(`POST /te HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: ${coding}\r\n\r\n`), GZIP_CHUNKED]),
      );
      assert.equal(res.status, 501, res.all);
      assert.equal(JSON.parse(res.all.slice(res.all.indexOf('\r\n\r\n') + 4)).code, 'not_implemented');
      assert.equal(res.headers.connection, 'close');
      assert.equal(upstream.heads.length, before);
    });
  }

  test('chunked alone (any case) still goes upstream, de-chunked', async () => {
    const res = await rawRequest(gw.gateway.port, 'POST /plain HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    assert.equal(res.status, 200);
    assert.match(upstream.heads.at(-1)!, /^POST \/plain /);
  });

  test('HTTP/1.0 with Transfer-Encoding: 400, closed; the request pipelined behind it never goes upstream', async () => {
    const before = upstream.heads.length;
    const res = await exchange(
      'POST /http10 HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' +
        'GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n',
    );
    assert.equal(res.status, 400, res.all);
    assert.match(res.all, /an HTTP\/1\.0 request has no Transfer-Encoding/);
    assert.equal(res.headers.connection, 'close');
    assert.equal((res.all.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, `one answer only: ${res.all}`);
    assert.equal(upstream.heads.length, before);
  });
});

describe('methods', () => {
  test('TRACE is 405 with Allow, over HTTP/1.1 and 1.0; nothing goes upstream', async () => {
    const before = upstream.heads.length;
    for (const version of ['1.1', '1.0']) {
      const res = await rawRequest(gw.gateway.port, `TRACE /t HTTP/${version}\r\nHost: a.test\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 405, version);
      assert.equal(res.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    }
    assert.equal(upstream.heads.length, before);
  });

  for (const method of ['BAN', 'FOO', 'get']) {
    test(`a method llhttp does not know (${method}) is 501, not a malformed request`, async () => {
      const res = await exchange(`${method} /m HTTP/1.1\r\nHost: a.test\r\n\r\n`);
      assert.equal(res.status, 501, res.all);
      assert.match(res.all, /"code":"not_implemented"/);
    });
  }

  test('a registered extension method llhttp knows (PURGE) still goes upstream', async () => {
    const res = await rawRequest(gw.gateway.port, 'PURGE /cache HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.match(upstream.heads.at(-1)!, /^PURGE \/cache /);
  });
});

describe('response framing', () => {
  for (const path of ['/gzip-chunked', '/gzip-then-chunked']) {
    test(`an upstream response framed with gzip before chunked (${path}) is 502 upstream_protocol, never relayed`, async () => {
      const res = await rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 502, res.body);
      assert.equal(JSON.parse(res.body).code, 'upstream_protocol');
      const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
      assert.equal(line?.status, 502);
    });
  }

  test('chunked alone is relayed', async () => {
    const res = await rawRequest(gw.gateway.port, 'GET /chunked HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.match(res.body, /hello/);
  });

  test("an upstream's 101 goes out without its hop-by-hop fields, with the gateway's own Connection: Upgrade", async () => {
    const { connect } = await import('node:net');
    const head = await new Promise<string>((resolve, reject) => {
      const socket = connect(gw.gateway.port, '127.0.0.1', () =>
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        ),
      );
      let data = '';
      const timer = setTimeout(() => reject(new Error(`no 101: ${data}`)), 5_000);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        clearTimeout(timer);
        socket.destroy();
        resolve(data.slice(0, end));
      });
    });
    const res = parseHead(head);
    assert.equal(res.status, 101);
    assert.equal(res.headers.connection, 'Upgrade');
    assert.equal(res.headers.upgrade, 'websocket');
    assert.equal(res.headers['x-internal'], undefined, 'a field the upstream named in Connection');
    assert.equal(res.headers['keep-alive'], undefined);
    assert.equal(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(res.headers['x-kept'], 'yes');
  });
});
