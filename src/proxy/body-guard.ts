// Watches a request body being forwarded: calls back when the client sends nothing for too long.
//
// Only time the client is to blame counts: while the gateway is not reading (the request waits for a connection,
// or the upstream's backpressure paused the body), silence is not the client's fault. Progress is read from the
// socket's byte counter, so watching adds no 'data' listener (which would start the stream flowing too early).
import type { IncomingMessage } from 'node:http';

/** Stops a guard; safe to call more than once. */
export type StopGuard = () => void;

/**
 * Calls `onIdle` once when `req`'s body is being read (flowing) yet no byte arrived for `timeoutMs`. Checks four
 * times per period (so it fires between 1 and 1.25 periods after the last byte); stops by itself once the body is
 * complete or the request is destroyed. `timeoutMs` 0 disables the guard.
 *
 * `responseBytes`, when given, counts as progress too: a gRPC stream is idle only when neither side sends (Envoy's
 * stream idle timeout). A bidirectional call whose client listens while the server pushes is in use, not stalled.
 */
export function guardRequestBody(req: IncomingMessage, timeoutMs: number, onIdle: () => void, responseBytes?: () => number): StopGuard {
  if (timeoutMs <= 0) return () => undefined;
  const socket = req.socket;
  const progress = responseBytes === undefined ? () => socket.bytesRead : () => socket.bytesRead + responseBytes();
  let lastBytes = progress();
  let quietSince = performance.now();
  const check = (): void => {
    if (req.complete || req.destroyed) return;
    const bytes = progress();
    const now = performance.now();
    if (bytes !== lastBytes || req.readableFlowing !== true) {
      lastBytes = bytes;
      quietSince = now;
    } else if (now - quietSince >= timeoutMs) {
      onIdle();
      return;
    }
    timer.refresh();
  };
  const timer = setTimeout(check, Math.max(10, Math.floor(timeoutMs / 4)));
  timer.unref();
  return () => clearTimeout(timer);
}
