// What node's HTTP/1 server lets through about the protocol itself, checked before any phase, beside the request
// target and Host checks.
//
// Why: the engine reads httpVersionMajor === 2 as "an HTTP/2 stream" (whether the request has a body, the stream
// behind the response), but llhttp also accepts an "HTTP/2.0" request line over HTTP/1: such a request's body,
// framed by its Content-Length, was never forwarded. And node answers an Expect it cannot meet with a bare 417 of
// its own unless a 'checkExpectation' listener takes the request (proxy-listener.ts passes it on to the driver),
// so the refusal is made here, from the catalogue, with the gateway's headers and a log line.
//
// And an HTTP/1.1 Upgrade request that declares a body: with an 'upgrade' listener, node's parser does not read the
// body of an Upgrade request (the request stream ends empty) but hands its bytes over unparsed, chunked framing and
// all, as the start of the new protocol: forwarded, they reached the upstream after its 101 as tunnel data, and a
// backend that reads the upgrade's body as HTTP would see bytes the gateway never looked at. RFC 9110 §7.8 switches
// protocols only after the request's content; a WebSocket opening handshake is a GET without any (RFC 6455 §4.1),
// and a client that sends one is broken or smuggling. Refused with 400, before any phase or upstream; the
// connection closes after it (the driver answers an Upgrade on the raw socket, never kept alive).
//
// And CONNECT, over either protocol: the gateway is no forward proxy and offers no extended CONNECT, and no route can
// forward one (undici sends no CONNECT as a request). Node closed an HTTP/1.1 CONNECT's connection without a word and
// answered an HTTP/2 one with a bare 405 unless someone listened; listeners/proxy-events.ts hands both to the driver,
// refused here with 405 and an Allow header, as the gateway's own routes refuse a method (health-route.ts). TRACE
// alike, as nginx refuses it: a backend's echo of the request would hand a page the credentials the gateway added or
// passed on (cross-site tracing), and RFC 9110 §7.6.2's Max-Forwards countdown is not worth a feature.
//
// And the framing of an HTTP/1 body (RFC 9112 §6.1): a Transfer-Encoding other than chunked alone is answered 501
// (llhttp accepts "gzip, chunked" and removes only the chunking, so the gzip label would be lost upstream: compressed
// bytes passed off as the content), and any Transfer-Encoding on an HTTP/1.0 request is faulty framing, 400; both
// close the connection, since what follows on it cannot be framed.
//
// And an HTTP/2 method the HTTP/1 port would not parse. llhttp takes only the methods it knows, spelled as
// registered (upper case: `delete` is 501), but nghttp2 takes any token as :method, and undici sends it upstream as
// given. Methods are case-sensitive (RFC 9110 §9.1), so `delete` matched no route whose `methods` name DELETE, and
// went on to a catch-all route past that route's auth, or passed the TRACE and CONNECT refusals below as `trace`;
// a backend that folds case (Django and Werkzeug upper-case REQUEST_METHOD, ASP.NET Core compares methods
// ignoring case) then served it as DELETE or TRACE. An HTTP/2 request gets the HTTP/1 port's rule instead: a
// method node's parser does not know (http.METHODS) is 501, as nginx refuses any :method outside A-Z, "-" and "_".
import { METHODS, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { declaresBody, onlyChunked } from './request-body.js';
import { nominatedForwardingHeader } from './client-address.js';

/** Shared: the request is answered and the connection closed (a client that sent HTTP/2.0 in plain HTTP/1 is lost). */
const VERSION_NOT_SUPPORTED = new GatewayError('HTTP_VERSION_NOT_SUPPORTED', { headers: { connection: 'close' } });
const EXPECTATION_FAILED = new GatewayError('EXPECTATION_FAILED');
/**
 * Shared: CONNECT and TRACE. Allow names the methods routes forward (a route's `methods` may narrow them; any other method
 * name is forwarded too): RFC 9110 §15.5.6 has a 405 list the methods the target supports.
 */
const METHOD_REFUSED = new GatewayError('METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' } });
/** The methods llhttp parses on the HTTP/1 port (node's http.METHODS): the only ones an HTTP/2 request may use. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
/**
 * How the gateway answers a request method before routing: CONNECT and TRACE 405, a method llhttp does not parse
 * (lower case, or unknown) 501, else undefined. For `portcullis routes --match`, which must not route what the
 * ports refuse.
 */
export function methodRefusal(method: string): GatewayError | undefined {
  if (method === 'CONNECT' || method === 'TRACE') return METHOD_REFUSED;
  return KNOWN_METHODS.has(method) ? undefined : UNKNOWN_METHOD;
}
/** Shared: an HTTP/2 :method the HTTP/1 port would refuse (lower case, or unknown). The stream alone is answered. */
const UNKNOWN_METHOD = new GatewayError('NOT_IMPLEMENTED', { details: 'unknown request method (methods are case-sensitive)' });
/** Shared: a transfer coding the gateway cannot pass on. */
const UNKNOWN_TRANSFER_CODING = new GatewayError('NOT_IMPLEMENTED', { headers: { connection: 'close' } });
/** Shared: a Transfer-Encoding on an HTTP/1.0 request. */
const HTTP10_TRANSFER_CODING = new GatewayError('BAD_REQUEST', {
  details: 'an HTTP/1.0 request has no Transfer-Encoding',
  headers: { connection: 'close' },
});
/** Shared: a trusted proxy's request whose Connection header names a forwarding header. */
const FORWARDING_HOP_BY_HOP = new GatewayError('BAD_REQUEST', { details: 'Connection names a forwarding header' });
/** Shared: an Upgrade request with a body. */
const UPGRADE_WITH_BODY = new GatewayError('BAD_REQUEST', { details: 'an Upgrade request has no body' });

/**
 * The values node treats as 100-continue over HTTP/1.x (its own continueExpression): node hands those to the
 * server's 'checkContinue' listener, and the gateway sends 100 Continue only once it is about to read the body
 * (expect-continue.ts). RFC 9110 §10.1.1 has a server ignore 100-continue from an HTTP/1.0 client.
 */
export const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** The driver's call: undefined when the protocol is one the gateway serves, else the error to answer. */
export function checkProtocol(
  req: Pick<IncomingMessage, 'httpVersionMajor' | 'httpVersionMinor' | 'headers'> & { readonly method?: string | undefined },
): GatewayError | undefined {
  if (req.method === 'CONNECT' || req.method === 'TRACE') return METHOD_REFUSED;
  // Over HTTP/1, llhttp takes four versions on a request line and answers 400 to any other: 1.0, 1.1, and 0.9 and 2.0,
  // which no request line with headers may carry (an HTTP/0.9 request is a bare `GET /path`). Every check below, the
  // framing ones first, reads a 1.x request; 0.9 passed them all and had its Transfer-Encoding list taken apart by
  // llhttp unchecked. An HTTP/2 request is a stream of node's HTTP/2 server (Http2ServerRequest, which has `stream`),
  // never a request line. RFC 9110 §15.6.6: 505 for a major version the server does not support in that form.
  if (req.httpVersionMajor !== 1 && (req as { stream?: unknown }).stream === undefined) return VERSION_NOT_SUPPORTED;
  const coding = req.headers['transfer-encoding'];
  if (coding !== undefined && req.httpVersionMajor === 1) {
    if (req.httpVersionMinor === 0) return HTTP10_TRANSFER_CODING;
    if (!onlyChunked(coding)) return UNKNOWN_TRANSFER_CODING;
  }
  // Over HTTP/1 llhttp has already refused any other method (501, reply.ts's parserRefusal).
  if (req.httpVersionMajor === 2 && req.method !== undefined && !KNOWN_METHODS.has(req.method)) return UNKNOWN_METHOD;
  const expect = req.headers.expect;
  // RFC 9110 §10.1.1: a server may answer 417 to an expectation other than 100-continue.
  if (expect !== undefined && !CONTINUE.test(expect)) return EXPECTATION_FAILED;
  return undefined;
}

/**
 * The driver's call for an HTTP/1.1 Upgrade request (node's 'upgrade' event): undefined when it declares no body,
 * else the error to answer. A body is any Content-Length but 0, or any Transfer-Encoding (llhttp lets only chunked
 * through, but none is acceptable).
 */
export function checkUpgrade(headers: IncomingHttpHeaders): GatewayError | undefined {
  return declaresBody(headers) ? UPGRADE_WITH_BODY : undefined;
}

/**
 * For a trusted proxy's request (the driver asks for no other: an untrusted peer's forwarding headers are never read
 * nor passed on, whatever its Connection header says): refused when its Connection header names a forwarding header
 * (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`). Such a header is hop-by-hop, to be removed before the request is
 * forwarded, and removing it would take the client's address (or scheme, host) off the request: the "hop-by-hop
 * header abuse" that makes a client look like the proxy itself, an internal address. Nothing a proxy adds for the
 * next hop is meant to stop there, so the request is refused as Envoy refuses it (400), rather than served as the
 * proxy's own. A client behind a proxy that passes its Connection header on gets the 400; no one else is affected.
 */
export function checkForwardingHopByHop(headers: IncomingHttpHeaders): GatewayError | undefined {
  return headers.connection !== undefined && nominatedForwardingHeader(headers.connection) !== undefined ? FORWARDING_HOP_BY_HOP : undefined;
}
