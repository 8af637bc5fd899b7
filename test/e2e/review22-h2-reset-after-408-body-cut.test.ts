// An HTTP/2 upload the gateway cut with a 408 (timeouts.request, or request_body_chunk for a silent body) never
// reaches the upstream as a complete body, whatever its client does next. A client that keeps its flow-control window
// shut (the 408's body waits) and then resets the stream with NO_ERROR: node 20 emits no 'aborted' once the answer is
// ending, and ends the request body as though the client had sent END_STREAM; undici sent the upstream the chunked
// terminator (HTTP/1.1) or END_STREAM (HTTP/2) before the response's close aborted the attempt, so a truncated upload
// was processed as whole (src/proxy/h2-reset-end.ts). Found by the investigation of an h2-stream-timeouts flake.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createH2c, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { clientPreface, FLAG, FRAME, frame, rawH2, requestBlock, zeroWindowSettings } from '../helpers/h2-frames.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** What an upstream saw of a request, by path: its body complete (the last chunk, or END_STREAM), its close. */
interface Seen {
  complete: boolean;
  closed: boolean;
}
const seen = new Map<string, Seen>();

const pki = pkiDir();
let ca: TestCa;
let gw: InProcessGateway;
let h1: Server;
let h2: Http2Server;
const h2Sessions = new Set<ServerHttp2Session>();

/** An HTTP/1.1 upstream that never answers and records whether the chunked body's last chunk arrived. */
async function startH1(): Promise<number> {
  h1 = createServer((socket: Socket) => {
    let text = '';
    let record: Seen | undefined;
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (record === undefined && text.includes('\r\n\r\n')) {
        record = { complete: false, closed: false };
        seen.set(text.split(' ')[1]!, record);
      }
      // The last chunk, or a head declaring no body (undici's for a body that ended before its first byte).
      if (record !== undefined && (text.endsWith('\r\n0\r\n\r\n') || /\r\ncontent-length: 0\r\n/i.test(text))) record.complete = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => record && (record.closed = true));
  });
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  return (h1.address() as AddressInfo).port;
}

/** An h2c upstream that never answers and records END_STREAM (an 'end' on a stream still open) against a reset. */
async function startH2(): Promise<number> {
  h2 = createH2c();
  h2.on('session', (session: ServerHttp2Session) => {
    h2Sessions.add(session);
    session.once('close', () => h2Sessions.delete(session));
  });
  h2.on('stream', (stream: ServerHttp2Stream, headers) => {
    const record: Seen = { complete: false, closed: false };
    seen.set(String(headers[':path']), record);
    stream.resume();
    stream.on('end', () => {
      if (!stream.closed) record.complete = true;
    });
    stream.on('error', () => undefined);
    stream.on('close', () => (record.closed = true));
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  return (h2.address() as AddressInfo).port;
}

before(async () => {
  ca = createTestCa('Reset After 408 CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const [h1Port, h2Port] = [await startH1(), await startH2()];
  gw = await startInProcess({
    server: {
      tls: { cert_file: cert.certFile, key_file: cert.keyFile },
      timeouts: { request_body_chunk: '1000ms', header: '2500ms', request: '2500ms', idle: '1000ms' },
    },
    services: {
      one: { upstreams: upstreams([h1Port]), health_check: { enabled: false } },
      two: { http2: true, upstreams: upstreams([h2Port]), health_check: { enabled: false } },
    },
    routes: [
      { name: 'two', match: { path_prefix: '/h2/' }, service: 'two' },
      { name: 'one', match: { path_prefix: '/' }, service: 'one' },
    ],
  });
});

after(async () => {
  await gw?.close();
  h1?.close();
  for (const session of h2Sessions) session.destroy();
  h2?.close();
  pki.remove();
});

/**
 * A POST on stream 1 with a window of 0 (the 408's body cannot go out), one byte of body and then a byte every 50 ms
 * (`trickle`) or nothing; once the 408's HEADERS arrive, RST_STREAM NO_ERROR. Asserts the upstream's request was
 * closed without its body's end.
 */
async function resetAfter408(path: string, trickle: boolean): Promise<void> {
  const client = await rawH2(gw.gateway.port, ca.ca);
  const rstNoError = Buffer.alloc(4); // code 0: NO_ERROR
  client.send(clientPreface(), zeroWindowSettings(), frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('POST', path)));
  client.send(frame(FRAME.DATA, 0, 1, Buffer.from('y')));
  let answered = false;
  const timer = trickle ? setInterval(() => answered || client.send(frame(FRAME.DATA, 0, 1, Buffer.from('x'))), 50) : undefined;
  try {
    await waitFor(() => client.frames().some((f) => f.type === FRAME.HEADERS && f.stream === 1), 'the 408 head', 6_000);
    answered = true;
    client.send(frame(FRAME.RST_STREAM, 0, 1, rstNoError));
    await waitFor(() => seen.get(path)?.closed === true, 'the upstream request to be closed', 5_000);
    assert.equal(seen.get(path)!.complete, false, `${path}: the upstream never saw the cut body as complete`);
  } finally {
    clearInterval(timer);
    client.socket.destroy();
  }
}

for (const prefix of ['/h1', '/h2']) {
  const upstream = prefix === '/h1' ? 'an HTTP/1.1 upstream' : 'an h2c upstream';
  test(`a trickle cut at timeouts.request, then reset NO_ERROR by its client: cut at ${upstream}`, () => resetAfter408(`${prefix}/trickle`, true));
  test(`a silent body cut at request_body_chunk, then reset NO_ERROR by its client: cut at ${upstream}`, () => resetAfter408(`${prefix}/silent`, false));
}
