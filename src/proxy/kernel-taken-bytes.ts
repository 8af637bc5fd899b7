// How far a client connection's bytes have got: what the kernel has taken, read from node's internal stream handles.
// Shared by the send bounds of forward.ts (a relayed download) and listeners/h1-send-bound.ts (an answer handed over
// whole on an HTTP/1.x connection).

/** The parts of node's internal stream handles (StreamBase: TCPWrap, TLSWrap) that say how far a write has got. */
interface StreamHandle {
  /** Bytes handed to the handle so far, counted when handed over (node's net.Socket reads it the same way). */
  readonly bytesWritten?: unknown;
  /** Of those, bytes libuv still holds because the kernel has not taken them (what net.js compares for timeouts). */
  readonly writeQueueSize?: unknown;
  /** TLSWrap only: the TCP handle under it, whose counts are ciphertext on the wire. */
  readonly _parent?: StreamHandle | null;
}

/** A net.Socket, TLSSocket or HTTP/2 session's socket proxy, as far as kernelTakenBytes looks into it. */
export interface HandleOwner {
  readonly _handle?: StreamHandle | null;
}

/**
 * Bytes of a client connection the kernel has taken, to tell a slow reader from a stalled one: rises whenever the
 * client takes any, so it moves in steps of whatever the kernel frees, not of whole response chunks (a chunk can be
 * 64 KB, longer than the bound to send for a slow client). Node has no public count of that: a socket's
 * bytesWritten rises when bytes are handed over, and its writableLength falls only when a whole write completes.
 * Read from the TCP handle where there is one (under TLS too), else from the socket's own handle; -1 without a handle
 * (closed: the close ends the attempt on its own). Called only when the send bound is armed or fires, never per chunk.
 * The kernel still sets the step: Linux reports a TCP socket writable again only once about a third of its send
 * buffer is free, and autotuned buffers are megabytes on loopback (measured: a 20 KB/s reader showed no progress for
 * 30 s), so over HTTP/1.1 a reader slower than that third per bound is still cut, as it would be by nginx.
 */
export function kernelTakenBytes(socket: HandleOwner | null | undefined): number {
  let handle = socket?._handle;
  if (handle?._parent != null && typeof handle._parent.bytesWritten === 'number') handle = handle._parent;
  if (handle == null || typeof handle.bytesWritten !== 'number') return -1;
  return handle.bytesWritten - (typeof handle.writeQueueSize === 'number' ? handle.writeQueueSize : 0);
}
