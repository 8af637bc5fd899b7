// The HTTP/2 streams the gateway itself resets or cuts, told apart from the ones the client resets. node emits
// 'aborted' for both (a stream closed before its answer was written), and the rapid-reset guard (listeners/h2-guard.ts)
// counted both: a client multiplexing over 100 streams a second onto an upstream that failed mid-answer (each
// stream cut INTERNAL_ERROR) or refused them (REFUSED_STREAM passed on) was sent GOAWAY ENHANCE_YOUR_CALM, every
// other stream on its connection cut, and the gateway logged it as an attack the client never made.

/** Streams the gateway ended itself: their 'aborted' is never the client's reset. */
const RESET_BY_GATEWAY = new WeakSet<object>();

/** RST_STREAM with `code`, sent by the gateway: the stream is marked first, since close() emits 'aborted' at once. */
export function resetStream(stream: { close(code?: number): void }, code: number): void {
  RESET_BY_GATEWAY.add(stream);
  stream.close(code);
}

/**
 * Before the gateway destroys a response: an HTTP/2 compat response's stream is marked (its destroy resets the
 * stream and emits 'aborted'); an HTTP/1 response has none, and nothing is marked.
 */
export function noteGatewayCut(res: object): void {
  const stream = (res as { stream?: object }).stream;
  if (stream !== undefined) RESET_BY_GATEWAY.add(stream);
}

/** Whether the gateway, not the client, ended `stream`. */
export function resetByGateway(stream: object): boolean {
  return RESET_BY_GATEWAY.has(stream);
}
