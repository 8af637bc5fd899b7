// holdTrailersForData over a real HTTP/2 connection: a response stream paused by its reader (the gateway, behind a
// slow client) while the upstream's last DATA and its trailers arrive. undici completes the request at 'trailers' and
// stops reading the stream's data there (client-h2.js), so whatever the buffer still held was lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { holdTrailersForData } from './connection-watch.js';

const BODY = 48 * 1024; // under the stream's flow-control window: all of it arrives while the reader is paused

/** Reads one response as undici does: data until 'trailers', then nothing. Resolves with the bytes it got. */
async function readLikeUndici(hold: boolean): Promise<{ bytes: number; trailers: unknown }> {
  const server = createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.alloc(BODY, 0x61));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const stream: ClientHttp2Stream = session.request({ ':path': '/' });
    if (hold) holdTrailersForData(stream);
    let bytes = 0;
    const onData = (chunk: Buffer): void => void (bytes += chunk.length);
    stream.on('data', onData);
    stream.pause(); // the client behind the gateway is slow: undici's onData returned false
    const trailers = await new Promise((resolve) => {
      stream.once('trailers', (t) => {
        stream.removeAllListeners('data');
        resolve(t);
      });
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
