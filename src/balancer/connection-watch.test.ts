// holdTrailersForData over a real HTTP/2 connection: a response stream paused by its reader (the gateway, behind a
// slow client) while the upstream's last DATA and its trailers arrive. undici completes the request at 'trailers' and
// stops reading the stream's data there (client-h2.js), so whatever the buffer still held was lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants, createServer, type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { holdTrailersForData } from './connection-watch.js';

const BODY = 48 * 1024; // under the stream's flow-control window: all of it arrives while the reader is paused

/**
 * Reads one response as undici does: data until 'trailers' or 'aborted', then nothing. Resolves with the bytes it
 * got. `resetAfter`: the upstream closes the stream (RST_STREAM NO_ERROR) after its trailers while the request body
 * is still open, as a Go gRPC server ends a client-streaming call.
 */
async function readLikeUndici(hold: boolean, resetAfter = false): Promise<{ bytes: number; trailers: unknown }> {
  const server = createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      stream.sendTrailers({ 'grpc-status': '0' });
      if (resetAfter) setTimeout(() => stream.close(constants.NGHTTP2_NO_ERROR), 20);
    });
    stream.end(Buffer.alloc(BODY, 0x61));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const stream: ClientHttp2Stream = session.request({ ':path': '/', ':method': 'POST' }, { endStream: !resetAfter });
    if (hold) holdTrailersForData(stream);
    if (resetAfter) stream.write(Buffer.alloc(10)); // the request body goes on
    let bytes = 0;
    const onData = (chunk: Buffer): void => void (bytes += chunk.length);
    stream.on('data', onData);
    stream.on('aborted', () => stream.removeAllListeners('data'));
    stream.pause(); // the client behind the gateway is slow: undici's onData returned false
    const trailers = await new Promise((resolve) => {
      stream.once('trailers', (t) => {
        stream.removeAllListeners('data');
        resolve(t);
      });
      stream.once('close', () => setTimeout(() => resolve(undefined), 50));
      setTimeout(() => stream.resume(), 200); // the client drained: undici resumes the stream
    });
    return { bytes, trailers };
  } finally {
    session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('without the hold, the trailers arrive while the paused stream still holds the body (the defect)', async () => {
  const got = await readLikeUndici(false);
  assert.ok(got.bytes < BODY, `${got.bytes} bytes before the trailers`);
});

test('with it, the trailers come after every byte of the body', async () => {
  const got = await readLikeUndici(true);
  assert.equal(got.bytes, BODY);
  assert.equal((got.trailers as Record<string, string>)['grpc-status'], '0');
});

test('an upstream that resets the stream after its trailers (the request body still open) is read to the end too', async () => {
  const without = await readLikeUndici(false, true);
  assert.ok(without.bytes < BODY, `without the hold: ${without.bytes} bytes`);
  const got = await readLikeUndici(true, true);
  assert.equal(got.bytes, BODY);
  assert.equal((got.trailers as Record<string, string> | undefined)?.['grpc-status'], '0');
});
