// What node's HTTP/1 server lets through about the protocol itself, checked before any phase, beside the request
// target and Host checks.
//
// Why: the engine reads httpVersionMajor === 2 as "an HTTP/2 stream" (whether the request has a body, the stream
// behind the response), but llhttp also accepts an "HTTP/2.0" request line over HTTP/1: such a request's body,
// framed by its Content-Length, was never forwarded. And node answers an Expect it cannot meet with a bare 417 of
// its own unless a 'checkExpectation' listener takes the request (proxy-listener.ts passes it on to the driver),
// so the refusal is made here, from the catalogue, with the gateway's headers and a log line.
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

/** Shared: the request is answered and the connection closed (a client that sent HTTP/2.0 in plain HTTP/1 is lost). */
const VERSION_NOT_SUPPORTED = new GatewayError('HTTP_VERSION_NOT_SUPPORTED', { headers: { connection: 'close' } });
const EXPECTATION_FAILED = new GatewayError('EXPECTATION_FAILED');

/**
 * The values node treats as 100-continue over HTTP/1.1 (its own continueExpression): node has answered those with
 * 100 Continue already. RFC 9110 §10.1.1 has a server ignore 100-continue from an HTTP/1.0 client.
 */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** The driver's call: undefined when the protocol is one the gateway serves, else the error to answer. */
export function checkProtocol(req: Pick<IncomingMessage, 'httpVersionMajor' | 'headers'>): GatewayError | undefined {
  // An HTTP/2 request is a stream of node's HTTP/2 server (Http2ServerRequest, which has `stream`), never a
  // request line; RFC 9110 §15.6.6: 505 for a major version the server does not support in that form.
  if (req.httpVersionMajor === 2 && (req as { stream?: unknown }).stream === undefined) return VERSION_NOT_SUPPORTED;
  const expect = req.headers.expect;
  // RFC 9110 §10.1.1: a server may answer 417 to an expectation other than 100-continue.
  if (expect !== undefined && !CONTINUE.test(expect)) return EXPECTATION_FAILED;
  return undefined;
}
