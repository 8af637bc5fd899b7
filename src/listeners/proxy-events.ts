// The proxy server's event handlers: requests (pipelined ones one at a time) and upgrades to the pipeline, CONNECT
// to the pipeline too (to be refused there like any request the gateway does not serve), the per-client connection
// cap, and the connections that never made a request: a head node's parser refused, a TLS handshake that failed or
// timed out, plain HTTP sent to the TLS port.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClientConnectionLimit } from '../connection-limit.js';
import { GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { answeredOutside } from '../pipeline/outside-answer.js';
import { awaitsRestOfRead, parserRefusal, rawErrorResponse } from '../pipeline/reply.js';
import { answerAndClose } from './raw-answer.js';
import { isQueuedRequestTimeout, oneRequestAtATime } from './pipelining.js';
import { boundHeaderList } from './h2-header-list.js';
import { isAfterLastRequest, responseInProgress } from '../pipeline/last-request.js';
import { normalizeAddress } from '../pipeline/client-address.js';
import { declaresBody } from '../pipeline/request-body.js';
import { tunnelledProtocol } from '../proxy/upgrade.js';

/** What the handlers hand requests to (the Pipeline). */
export interface RequestHandlers {
  readonly handleRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/**
 * Attaches every handler of the proxy server. `proxyBy` is read per answer (a reload may change it). `secure`: the
 * listener is TLS (node's https or HTTP/2 secure server; said by the caller, so that node:tls is not loaded to ask).
 */
export function attachProxyHandlers(
  server: NetServer,
  options: { readonly perClient: ClientConnectionLimit; readonly pipeline: RequestHandlers; readonly proxyBy: () => string; readonly secure: boolean },
): void {
  const { pipeline } = options;
  const logRefusal = refusalLogOf(server);
  server.on('connection', options.perClient.listener(options.secure, overCapRefusals(logRefusal)));
  // Pipelined HTTP/1.1 requests one at a time (pipelining.ts); checkContinue and checkExpectation re-emit 'request'.
  // An HTTP/2 header list over the bound is reset before it is a request (h2-header-list.ts), a CONNECT's too (node's
  // HTTP/2 layer emits CONNECT as 'connect', not 'request').
  const overBound = (req: IncomingMessage): void => logRefusal({ client: clientOf(req.socket), error: 'HEADERS_TOO_LARGE' });
  server.on('request', boundHeaderList(oneRequestAtATime(pipeline.handleRequest, pipelinedRefusals(logRefusal)), overBound));
  server.on('upgrade', upgradeHandler(server, pipeline));
  server.on('connect', connectHandler(pipeline, boundHeaderList(pipeline.handleRequest, overBound)));
  server.on('clientError', clientErrorHandler(options.proxyBy, () => RAW_ANSWER_HSTS.get(server)?.() ?? '', logRefusal));
}

/**
 * A connection answered or closed with no request of the driver's behind it, for its log line (EVENTS.connectionRefused):
 * the access log has none for it. Its client, the catalogue code, and the status and request id of the answer when
 * one was written; never anything the client sent.
 */
export interface Refusal {
  readonly client: string;
  readonly error: string;
  readonly status?: number | undefined;
  readonly request_id?: string | undefined;
  /** PIPELINED_REQUESTS: how many requests were waiting, and the bytes of their heads. */
  readonly waiting?: number;
  readonly waiting_bytes?: number;
}

/** Writes a refusal's log line. */
export type RefusalLog = (refusal: Refusal) => void;

/** Each proxy server's refusal log, registered by the listener that made it (proxy-listener.ts holds the logger). */
const REFUSAL_LOGS = new WeakMap<NetServer, RefusalLog>();

/** Registers where the refusals on `server` are logged. */
export function setRefusalLog(server: NetServer, log: RefusalLog): void {
  REFUSAL_LOGS.set(server, log);
}

/** The refusal log of `server`, looked up per refusal: the listener registers it after the handlers are attached. */
export function refusalLogOf(server: NetServer): RefusalLog {
  return (refusal) => REFUSAL_LOGS.get(server)?.(refusal);
}

/**
 * Writes a refusal's line: at warn for a connection closed over its pipelined requests (a client flooding the port),
 * at info for the rest (a client's own mistake or its cap). `fields` are added to each line (the port's name).
 */
export function refusalLogger(logger: Logger, fields: Readonly<Record<string, string>> = {}): RefusalLog {
  return (refusal) => {
    const line = { ...refusal, ...fields };
    if (refusal.error === 'PIPELINED_REQUESTS') logger.warn(line, EVENTS.connectionRefused);
    else logger.info(line, EVENTS.connectionRefused);
  };
}

/** The per-client cap's refusals (connection-limit.ts): the 429 and its id, or on TLS the close, no status, no id. */
export function overCapRefusals(log: RefusalLog): (client: string, requestId: string | undefined) => void {
  return (client, requestId) =>
    log({ client, request_id: requestId, status: requestId === undefined ? undefined : 429, error: 'TOO_MANY_CONNECTIONS' });
}

/** A connection closed for more pipelined requests, or bytes of their heads, waiting than pipelining.ts allows. */
export function pipelinedRefusals(log: RefusalLog): (socket: Socket, waiting: number, waitingBytes: number) => void {
  return (socket, waiting, waitingBytes) => log({ client: clientOf(socket), error: 'PIPELINED_REQUESTS', waiting, waiting_bytes: waitingBytes });
}

/** The client of a connection as the logs write it (one text per address: client-address.ts). */
export function clientOf(socket: Socket): string {
  return normalizeAddress(socket.remoteAddress ?? '');
}

/**
 * Each proxy server's current HSTS value, registered by the listener that made it (proxy-listener.ts): the listener
 * holds the settings a reload swaps, so its raw answers carry the value as it stands now.
 */
const RAW_ANSWER_HSTS = new WeakMap<NetServer, () => string>();

/** Registers where the raw answers of `server` read their Strict-Transport-Security value ('' for none). */
export function setRawAnswerHsts(server: NetServer, hsts: () => string): void {
  RAW_ANSWER_HSTS.set(server, hsts);
}

/**
 * Upgrade requests to the pipeline, but for one the gateway does not tunnel (not WebSocket, or HTTP/1.0: see
 * tunnelledProtocol) that declares a body: `curl --http2 -d x=1 http://...` sends a POST with `Upgrade: h2c` and a
 * Content-Length, as do other clients that prefer HTTP/2 on cleartext. RFC 9110 §7.8 lets a server ignore the
 * Upgrade, and then the body is the request's content (nginx and Envoy serve such a POST as a plain one). But with
 * an 'upgrade' listener, node's parser stops at the head of any Upgrade request and hands the body over unparsed
 * (node 20 cannot decline an upgrade per request): the driver could only refuse it (400, protocol-check.ts), which
 * stays the answer to a WebSocket Upgrade with a body. This one is given back to node's HTTP/1 parser instead, as the
 * same request without its Upgrade field (and with `Connection: close`, as any Upgrade answered without a switch
 * ends its connection): node frames its body (Content-Length or chunked), answers 100-continue through the
 * server's listeners, and emits it as a plain 'request', with every phase, limit and timeout of one. Bytes after the
 * body (an HTTP/2 preface sent too early) are never served: the request ends the connection (last-request.ts).
 */
function upgradeHandler(server: NetServer, pipeline: RequestHandlers): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    // Behind a response still owed on this connection (pipelined), a new parser could not queue its answer after
    // that one (node keeps the queue in the first parser's state): left to the driver, which closes the connection.
    const owed = (socket as { _httpMessage?: unknown })._httpMessage;
    const parse = (owed === undefined || owed === null) && tunnelledProtocol(req) === null && declaresBody(req.headers) ? httpConnectionListener() : undefined;
    if (parse === undefined) {
      pipeline.handleUpgrade(req, socket, head);
      return;
    }
    // unshift puts each in front: the head goes before the body bytes already read.
    if (head.length > 0) socket.unshift(head);
    socket.unshift(Buffer.from(headWithoutUpgrade(req), 'latin1'));
    parse.call(server, socket);
  };
}

/**
 * node's own HTTP/1 connection listener (what http.Server runs on each connection; https and HTTP/2's allowHTTP1
 * run it too), from node:_http_server. Run on a socket node's parser let go of at an Upgrade, it sets up a new
 * parser with the server's settings and listeners; the socket stays counted once (no 'connection' event). The
 * handle node consumed for the first parser stays marked consumed, so the new one reads through 'data' events, the
 * bytes put back with unshift first. Undefined if a Node.js version lacked it: the request is then refused as before.
 */
function httpConnectionListener(): ((this: NetServer, socket: Duplex) => void) | undefined {
  const internals = process.getBuiltinModule('_http_server') as { _connectionListener?: unknown } | undefined;
  const listener = internals?._connectionListener;
  return typeof listener === 'function' ? (listener as (this: NetServer, socket: Duplex) => void) : undefined;
}

/**
 * The request head as the client sent it (node's parse: the target, the header names and values as they came, in
 * latin1 as node read them), without its Upgrade field, and with one Connection field: the client's options minus
 * upgrade and keep-alive (the headers they name are still removed before the request goes upstream), plus close.
 */
function headWithoutUpgrade(req: IncomingMessage): string {
  const raw = req.rawHeaders;
  const options: string[] = [];
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade') continue;
    if (lower === 'connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const option = token.trim();
        if (option !== '' && !/^(?:upgrade|keep-alive|close)$/i.test(option)) options.push(option);
      }
      continue;
    }
    head += `${name}: ${raw[i + 1]!}\r\n`;
  }
  options.push('close');
  return `${head}Connection: ${options.join(', ')}\r\n\r\n`;
}

/**
 * CONNECT, which the gateway never serves (it is no forward proxy, and offers no extended CONNECT), is still a
 * request: it goes to the pipeline, which refuses it (405, protocol-check.ts) with the gateway's headers, error
 * body and log line. Without this listener node answered it itself: over HTTP/1.1 the connection was closed with no
 * response, over HTTP/2 a bare 405, neither logged. node emits 'connect' with an HTTP/2 stream's compat request and
 * response, or with an HTTP/1.1 request and its raw socket (answered as an Upgrade is: on the socket, then closed).
 */
function connectHandler(
  pipeline: RequestHandlers,
  handleH2: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, second: ServerResponse | Duplex, head?: Buffer) => void {
  return (req, second, head) => {
    if ((req as { stream?: unknown }).stream !== undefined) handleH2(req, second as ServerResponse);
    else pipeline.handleUpgrade(req, second as Duplex, head ?? Buffer.alloc(0));
  };
}

const PLAIN_HTTP = new GatewayError('BAD_REQUEST', { details: 'plain HTTP request sent to the HTTPS port' });

/**
 * The answer to an error of node's HTTP/1 parser (reply.ts's parserRefusal, the test kit's inject answers with it
 * too): 408 on a header timeout, 431 for oversized headers, 400 for any other parse error. Undefined for an error of
 * the connection itself (ECONNRESET, EPIPE, a TLS record that fails after the handshake): nothing can be written.
 */
function parserAnswer(code: string | undefined): GatewayError | undefined {
  return code === 'ERR_HTTP_REQUEST_TIMEOUT' || code?.startsWith('HPE_') === true ? parserRefusal(code) : undefined;
}

/**
 * node's https and HTTP/2 servers pass their 'tlsClientError' (a handshake that timed out after timeouts.header,
 * failed, was reset, or was never a handshake) on as 'clientError', with a TLSSocket whose handshake never
 * finished; once someone listens, node itself closes nothing. Such a socket is destroyed at once: it can carry no
 * HTTP answer (the ended socket of a 408 written there never flushed, never closed, sat in CLOSE-WAIT once its
 * client left, and held its max_connections_per_client slot for good). One exception is answered, as nginx does:
 * the connection's first record was not TLS (isPlainHttp: an HTTP request line), so the client speaks cleartext
 * HTTP and no TLS byte was ever exchanged: it gets a cleartext 400 on the underlying TCP socket, then the
 * connection closes.
 *
 * On a cleartext connection, or a TLS one past its handshake: malformed HTTP (node's parser refused it before any
 * request existed) gets 400, 408 on a header timeout or 431 for oversized headers, from the error catalogue with
 * the gateway headers, then the connection is closed (answerAndClose: reading stops, and the socket is destroyed
 * once the answer is out, or after a bound if it never leaves). Nothing is written, and the socket is destroyed,
 * when the connection itself failed, or when an earlier request on this connection is still being answered: a
 * pipelined request went bad behind it. A status line now would either land inside that response (already begun)
 * or before it (not begun yet: out of order), and ending the socket under pending responses left them, their
 * upstream attempts and the half-closed socket waiting forever. RFC 9112 lets a server close instead; the client
 * retries what went unanswered, and the pending requests are logged as 499 and their attempts cut.
 */
export function clientErrorHandler(
  proxyBy: () => string,
  hsts: () => string = () => '',
  log?: RefusalLog,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (isTlsBeforeHandshake(socket)) {
      if (isPlainHttp(err.code)) {
        const id = answerPlainHttp(socket, proxyBy());
        if (id !== undefined) log?.({ client: clientOf(socket), request_id: id, status: PLAIN_HTTP.status, error: PLAIN_HTTP.code });
      }
      socket.destroy();
      return;
    }
    // Bytes after a request that ends the connection: ignored while it is answered (last-request.ts).
    if (isAfterLastRequest(err, socket)) return;
    // node's timeouts.request of a queued request, counted from its first byte: its own runs from its turn (pipelining.ts).
    if (isQueuedRequestTimeout(err, socket)) return;
    const current = responseInProgress(socket);
    // Bytes node cannot parse behind a request whose refusal waits for the rest of their read (reply.ts): that
    // refusal goes out once that read is parsed and its hooks ran, saying Connection: close, and node closes the
    // connection after it. Every later chunk errs the same way until then.
    if (current != null && awaitsRestOfRead(current)) {
      (current as { shouldKeepAlive: boolean }).shouldKeepAlive = false;
      return;
    }
    const answer = parserAnswer(err.code);
    // An incomplete current request is the one that went bad (its body): it can still get its 400.
    if (answer === undefined || !socket.writable || current?.headersSent === true || current?.req?.complete === true) {
      socket.destroy();
      return;
    }
    // A body refused under a request the driver runs: that request's id and time, and it is logged as answered;
    // unless the refusal is the client's FIN inside the body (HPE_INVALID_EOF_STATE): it left, logged 499.
    const running = answeredOutside(current, answer, err.code === 'HPE_INVALID_EOF_STATE');
    const id = running?.id ?? randomUUID();
    answerAndClose(socket, rawErrorResponse(withHsts(answer, socket, hsts()), id, proxyBy(), running?.ms));
    // A request the driver runs is logged there (Request Completed); a head refused before any request, here.
    if (running === undefined) log?.({ client: clientOf(socket), request_id: id, status: answer.status, error: answer.code });
  };
}

/** What node itself refuses in a header value (its checkInvalidHeaderChar): never written raw onto a socket. */
export const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * The answer with Strict-Transport-Security when it goes out over TLS and HSTS is set: every other response on a TLS
 * connection has it (the HSTS phase, tls/setup.ts), and RFC 6797 asks for it on any response over secure transport,
 * errors included (nginx's `add_header ... always`). Never over cleartext, where RFC 6797 §7.2 has clients ignore
 * it. A value node would refuse in a header is left out rather than written raw, where it could break the head.
 */
function withHsts(answer: GatewayError, socket: Socket, hsts: string): GatewayError {
  if (hsts === '' || (socket as Partial<TLSSocket>).encrypted !== true || INVALID_HEADER_VALUE.test(hsts)) return answer;
  const headers = { ...answer.headers, 'strict-transport-security': hsts };
  return new GatewayError(answer.code, { message: answer.message, details: answer.details, headers });
}

/**
 * The handshake errors of a client that spoke no TLS at all. OpenSSL names five request lines (GET, POST, HEAD,
 * PUT: ERR_SSL_HTTP_REQUEST; CONNECT: ERR_SSL_HTTPS_PROXY_REQUEST); any other first record whose version byte is not
 * TLS's (a DELETE, OPTIONS, PATCH or TRACE line, an h2c preface) is ERR_SSL_WRONG_VERSION_NUMBER, and OpenSSL
 * writes no alert for it ("doesn't look like TLS"). Without it those clients got a close with no byte, where the
 * README (and nginx) answer any plain HTTP request with the cleartext 400. The same code raised by a later record
 * of a broken TLS handshake gets the 400 after OpenSSL's alert: harmless bytes to a client that is failing anyway.
 */
function isPlainHttp(code: string | undefined): boolean {
  return code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_HTTPS_PROXY_REQUEST' || code === 'ERR_SSL_WRONG_VERSION_NUMBER';
}

/**
 * A TLS socket whose handshake has not completed: alpnProtocol is null until it does (then the protocol, or false
 * without ALPN), as node documents.
 */
function isTlsBeforeHandshake(socket: Socket): boolean {
  return (socket as Partial<TLSSocket>).encrypted === true && (socket as TLSSocket).alpnProtocol === null;
}

/**
 * The 400 to a cleartext HTTP client on the TLS port, written on the TCP socket under the TLS one. That socket is
 * the TLSSocket's `_parent`, which node has set since TLS sockets wrap net sockets (no public accessor exists);
 * should it be missing or gone, the connection is only closed, as before. The TLS socket has been destroyed by the
 * time node reports this error, and the TCP socket closes right after it: the answer is written at once, and
 * answerAndClose bounds the rest. Returns the answer's request id, or undefined when nothing could be written.
 */
function answerPlainHttp(socket: Socket, proxyBy: string): string | undefined {
  const tcp = (socket as { _parent?: unknown })._parent;
  if (!(tcp instanceof Socket) || tcp.destroyed || !tcp.writable) return undefined;
  const id = randomUUID();
  answerAndClose(tcp, rawErrorResponse(PLAIN_HTTP, id, proxyBy));
  return id;
}
