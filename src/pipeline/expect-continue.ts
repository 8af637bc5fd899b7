// Expect: 100-continue, answered only when the body is wanted. Without a 'checkContinue' listener node sends
// 100 Continue itself the moment the request head is parsed, before any phase has run: a request then refused (413
// over max_body_size, 401, 429, 404, ...) had its client upload the whole body, which the gateway read and threw
// away. The listener hands such requests to the driver like any other, and the 100 goes out only when the body is
// about to be read: when the request is dispatched upstream (forward.ts) or an /auth/* body is read (auth/body.ts),
// as nginx sends it when it starts reading the body and Envoy when it starts proxying. A request answered without
// it (a refusal) gets its final status alone: over HTTP/1.1 node then closes the connection after the answer
// (Connection: close), since the client may or may not send the body, and the bytes that follow could not be told
// from the next request; over HTTP/2 node closes the stream whose body was never read (RST_STREAM NO_ERROR).
// The Expect header itself never goes upstream (proxy/headers.ts).
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONTINUE } from './protocol-check.js';
import { declaresBody } from './request-body.js';

/** Responses that have had their 100 Continue (a retried attempt dispatches again: one 100 per request). */
const continued = new WeakSet<object>();

/**
 * Attaches the 'checkContinue' listener to a server (node:http, node:https, or node:http2's compat server, which
 * emits the same event for `expect: 100-continue`): the request goes to the 'request' listeners without a 100. An
 * HTTP/1.1 request that declares no body (no Transfer-Encoding, no Content-Length or 0: clients that put Expect on
 * every request) has nothing to hold back and gets its 100 at once, as node gave it: node closes the connection
 * after a response whose asked-for 100 never went out, so each such request would cost a new connection.
 */
export function deferContinue(server: EventEmitter): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor === 1 && !declaresBody(req.headers)) continueBody(req, res);
    server.emit('request', req, res);
  });
}


/**
 * Sends 100 Continue when the client asked for it (HTTP/1.1 or HTTP/2; RFC 9110 §10.1.1: an HTTP/1.0 client's
 * expectation is ignored) and nothing has been sent on the response yet. Call right before reading the body.
 */
export function continueBody(
  req: Pick<IncomingMessage, 'headers' | 'httpVersionMajor' | 'httpVersionMinor'>,
  res: Pick<ServerResponse, 'headersSent' | 'writeContinue'>,
): void {
  const expect = req.headers.expect;
  if (expect === undefined || res.headersSent || continued.has(res)) return;
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return;
  if (!CONTINUE.test(expect)) return;
  continued.add(res);
  res.writeContinue();
}
