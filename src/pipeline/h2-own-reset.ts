// The HTTP/2 streams the gateway resets or cuts because their upstream failed, told apart from the client's resets.
// node emits 'aborted' for both (a stream closed before its answer was written), and the rapid-reset guard
// (listeners/h2-guard.ts) counted both: a client multiplexing over 100 streams a second onto an upstream that failed
// mid-answer (each stream cut INTERNAL_ERROR) or refused them (REFUSED_STREAM passed on) was sent GOAWAY
// ENHANCE_YOUR_CALM, every other stream on its connection cut, and the gateway logged an attack the client never made.
// Only the upstream's failures are exempt: a cut the client's own input causes (a body over max_body_size, a stalled
// upload, a header list over the bound) still counts, or a client could have the gateway reset its streams for it,
// uncounted, while each abandoned upstream request went on working (measured: 782 at once behind a 100-stream limit).
import type { GatewayError } from '../errors.js';

/** Streams the gateway reset or cut because their upstream failed: their 'aborted' is not the client's doing. */
const UPSTREAM_CAUSED = new WeakSet<object>();

/** RST_STREAM with `code` for an upstream's failure: marked first, since close() emits 'aborted' at once. */
export function resetForUpstream(stream: { close(code?: number): void }, code: number): void {
  UPSTREAM_CAUSED.add(stream);
  stream.close(code);
}

/**
 * Before the gateway destroys a begun response for `error`: an HTTP/2 compat response's stream is marked when the
 * error is the upstream's (its destroy resets the stream and emits 'aborted'); an HTTP/1 response has no stream.
 */
export function noteCut(res: object, error: GatewayError): void {
  if (error.source !== 'upstream') return;
  const stream = (res as { stream?: object }).stream;
  if (stream !== undefined) UPSTREAM_CAUSED.add(stream);
}

/** Whether the gateway ended `stream` for its upstream's failure, not for anything the client did. */
export function causedByUpstream(stream: object): boolean {
  return UPSTREAM_CAUSED.has(stream);
}
