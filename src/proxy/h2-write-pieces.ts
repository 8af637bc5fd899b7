// Writes to a client's HTTP/2 stream in pieces whose completion can be seen. A stream's write completes only once its
// DATA frames are out, which the client's flow-control window allows, and node 20 exposes neither that window nor a
// count of bytes sent: the send bounds (forward.ts for a relayed body, listeners/h2-guard.ts for an answer handed
// over whole) count a stream's progress by its writableLength, which falls by whole writes. A large write held all
// of itself until its last frame was out, so a reader taking it steadily, but more slowly than its size per bound,
// looked stalled and was cut.

import type { RequestContext } from '../pipeline/context.js';
import type { ServerHttp2Stream } from 'node:http2';

/**
 * The largest piece handed to a client's stream in one write: one DATA frame at the default SETTINGS_MAX_FRAME_SIZE.
 * In pieces, a reader taking 16 KB per send bound is never cut.
 */
export const H2_WRITE_PIECE = 16 * 1024;

/** Writes `chunk` in pieces of H2_WRITE_PIECE; false, like write(), once the stream's buffer is full. */
export function writeInPieces(res: RequestContext['res'], chunk: Buffer): boolean {
  let flowing = true;
  for (let at = 0; at < chunk.length; at += H2_WRITE_PIECE) flowing = res.write(chunk.subarray(at, at + H2_WRITE_PIECE));
  return flowing;
}

/**
 * Has `stream` hand what it buffers to nghttp2 one write at a time. A Writable with a _writev joins everything
 * buffered behind a write in progress into one write, which completes only once all of it is out: three 16 KB pieces
 * joined took longer to complete for a slow reader than the send bound. Only for a stream whose client fell behind
 * (forward.ts: the bound is armed) or whose answer is larger than a piece (endInPieces): one that keeps up buffers
 * nothing, and keeps the joined writes.
 */
export function oneWriteAtATime(stream: ServerHttp2Stream): void {
  (stream as unknown as { _writev: unknown })._writev = null;
}

/** True when `body` is more than one piece (a string's UTF-8 length is counted only when it may be). */
export function largerThanPiece(body: string | Uint8Array): boolean {
  if (typeof body !== 'string') return body.byteLength > H2_WRITE_PIECE;
  return body.length > H2_WRITE_PIECE || (body.length * 3 > H2_WRITE_PIECE && Buffer.byteLength(body) > H2_WRITE_PIECE);
}

/** Ends `res`, the compat response of `stream`, with `body` written in pieces one at a time (see above). */
export function endInPieces(res: RequestContext['res'], stream: ServerHttp2Stream, body: string | Uint8Array): void {
  oneWriteAtATime(stream);
  writeInPieces(res, typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  res.end();
}
