// In-process requests (fastify's inject): a request runs through the real pipeline handler with no client socket,
// using light-my-request's node-compatible request and response objects. Upstreams are still real.
//
// The request reaches the pipeline as the proxy port would hand it over, never normalised: light-my-request parses
// `url` with WHATWG URL rules (dot-segments merged, "%2e%2e" decoded and merged, "\" read as "/", the fragment
// dropped, an absolute-form target cut to its path) and replaces an empty Host, so the driver's checks
// (path-check.ts, host-check.ts) never saw what a client sent. Instead, the request head is parsed by node's own
// HTTP/1 parser, as a request on the port is: the pipeline gets that parse's target, headers and raw headers (the
// driver then refuses what it refuses on the port, with the same answer), and a head node's parser refuses gets the
// answer the proxy port gives a refused head (server.ts's clientError handler: reply.ts's rawErrorResponse).
import { Server, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Duplex } from 'node:stream';
import { parserRefusal, rawErrorResponse } from './reply.js';

/** One request to inject. `body`: a string, a Buffer, or an object sent as JSON. */
export interface InjectOptions {
  readonly method?: string;
  /**
   * The request target exactly as the request line carries it ("/users/1?x=y"), never normalised: "/a/../b",
   * "http://host/p", "/p#f" reach the gateway's checks as written. A target with a byte no request line can carry
   * (space, control, non-ASCII) is answered as the port answers such a request line: 400, "malformed HTTP request".
   */
  readonly url: string;
  /**
   * Header lines as sent. An array sends the header once per value (a repeated Host: 400, as on the port);
   * undefined leaves the header out (`host: undefined`: no Host line at all). Without a host key the request carries
   * `Host: localhost:80`, without a user-agent key `User-Agent: lightMyRequest`.
   */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body?: string | Buffer | Record<string, unknown> | unknown[];
  /** The client address the gateway sees (default 127.0.0.1). */
  readonly remoteAddress?: string;
  /** X-Proxy-By of the answer to a head node's parser refuses: server.proxy_by (default "Portcullis", its default). */
  readonly proxyBy?: string;
}

/** The answer, fully read. */
export interface InjectResponse {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>;
  readonly body: string;
  /** The body parsed as JSON (throws on a body that is not JSON). */
  json<T = unknown>(): T;
}

/** What node's HTTP/1 parser made of a request head. */
type HeadParse =
  | { readonly kind: 'request'; readonly url: string; readonly headers: IncomingHttpHeaders; readonly rawHeaders: string[] }
  | { readonly kind: 'refused'; readonly code: string | undefined }
  | { readonly kind: 'closed' };

/** The socket a parse runs on: bytes in, nothing out; `settle` ends the parse once node has said what it made of it. */
class HeadSocket extends Duplex {
  settle: (result: HeadParse) => void = () => {};
  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, done: () => void): void {
    done(); // node's own writes (100 Continue): nobody reads them
  }
}

let parser: Server | undefined;

/**
 * A node:http server that never listens: request heads are fed to it on a HeadSocket and parsed by node's HTTP/1
 * parser, with the proxy port's parser settings (proxy-listener.ts: requireHostHeader off, the driver refuses a
 * missing Host itself; every other setting node's default, as there).
 */
function headParser(): Server {
  if (parser !== undefined) return parser;
  parser = new Server({ requireHostHeader: false });
  const parsed = (req: IncomingMessage): void => {
    req.on('error', () => {}); // the head is all there is: the socket goes before any body
    (req.socket as unknown as HeadSocket).settle({ kind: 'request', url: req.url ?? '', headers: { ...req.headers }, rawHeaders: [...req.rawHeaders] });
  };
  parser.on('request', parsed);
  // As on the port: proxy-listener.ts hands an unmet Expect to the driver (protocol-check.ts answers it), and a
  // 100-continue too (nothing is written here either way: the head is all this server sees).
  parser.on('checkExpectation', parsed);
  parser.on('checkContinue', parsed);
  // No 'upgrade' listener: node then emits 'request' for an Upgrade, and inject runs it as a plain request, as it
  // always has (the driver's 'upgrade' handler answers on a socket).
  parser.on('clientError', (err: NodeJS.ErrnoException, socket: HeadSocket) => socket.settle({ kind: 'refused', code: err.code }));
  return parser;
}

/** Parses `head` (a complete request head, CRLF CRLF included) as a request on the proxy port would be. */
function parseHead(head: Buffer): Promise<HeadParse> {
  return new Promise((resolve) => {
    const socket = new HeadSocket();
    let settled = false;
    socket.settle = (result) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    // No 'request' or 'clientError': node closed the connection (a CONNECT, which the gateway does not serve).
    socket.once('close', () => socket.settle({ kind: 'closed' }));
    headParser().emit('connection', socket);
    socket.push(head);
  });
}

/** True when `target` holds a byte no request line can carry in its target: space, control, DEL or non-ASCII. */
function hasNonTargetByte(target: string): boolean {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return true;
  }
  return false;
}

/** The request head: the request line with `target` as written, then one line per header. */
function requestHead(method: string, target: string, lines: ReadonlyArray<readonly [string, string]>): Buffer {
  let text = '';
  for (const [name, value] of lines) {
    for (const field of [name, value]) {
      for (let i = 0; i < field.length; i++) {
        const c = field.charCodeAt(i);
        // As node's own client refuses them: a line break would make another header, a character above U+00FF has
        // no byte. Anything else goes as it is, for node's parser to judge as the port's would.
        if (c === 0x0a || c === 0x0d || c > 0xff) throw new TypeError(`inject: header ${JSON.stringify(name)} holds a character no HTTP/1.1 request can carry in one header line`);
      }
    }
    text += `${name}: ${value}\r\n`;
  }
  return Buffer.concat([Buffer.from(`${method} ${target} HTTP/1.1\r\n`, 'latin1'), Buffer.from(`${text}\r\n`, 'latin1')]);
}

/** The answer the proxy port writes on the raw socket to a head node's parser refused (server.ts's clientError). */
function refusedHead(code: string | undefined, proxyBy: string): InjectResponse {
  const raw = rawErrorResponse(parserRefusal(code), randomUUID(), proxyBy);
  const split = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = raw.slice(split + 4);
  return {
    status: Number(statusLine!.split(' ')[1]),
    headers,
    body,
    json<T>() {
      return JSON.parse(body) as T;
    },
  };
}

/** Runs `handler` (the pipeline's request handler) for one request and resolves with the complete response. */
export async function injectRequest(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: InjectOptions,
): Promise<InjectResponse> {
  const method = (options.method ?? 'GET').toUpperCase();
  const body = options.body;
  const given = options.headers ?? {};
  let payload: string | Buffer | undefined;
  let json = false;
  if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
  else {
    payload = JSON.stringify(body);
    json = true;
  }
  // The header lines, with the defaults light-my-request has always added (Host, User-Agent, Content-Length).
  const names = new Set(Object.keys(given).map((name) => name.toLowerCase()));
  const lines: Array<readonly [string, string]> = [];
  if (!names.has('host')) lines.push(['host', 'localhost:80']);
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) continue;
    for (const one of typeof value === 'string' ? [value] : value) lines.push([name, String(one)]);
  }
  if (!names.has('user-agent')) lines.push(['user-agent', 'lightMyRequest']);
  if (json && !names.has('content-type')) lines.push(['content-type', 'application/json']);
  if (payload && !names.has('content-length') && !names.has('transfer-encoding')) lines.push(['content-length', String(Buffer.byteLength(payload))]);

  const proxyBy = options.proxyBy ?? 'Portcullis';
  const target = options.url;
  // Bytes node's parser refuses anywhere in a target (every one, measured), and which could end the request line.
  if (target === '' || hasNonTargetByte(target)) return refusedHead('HPE_INVALID_URL', proxyBy);
  const parse = await parseHead(requestHead(method, target, lines));
  if (parse.kind === 'refused') return refusedHead(parse.code, proxyBy);
  if (parse.kind === 'closed') throw Object.assign(new Error('socket hang up: the gateway closes the connection without an answer'), { code: 'ECONNRESET' });

  // Loaded on first use: only tests and embedders inject, a running gateway never does.
  const { inject: lightInject } = await import('light-my-request');
  // light-my-request's own request: its body stream and mock socket; the target and headers are node's parse.
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    req.url = parse.url;
    req.headers = parse.headers;
    req.rawHeaders = parse.rawHeaders;
    handler(req, res);
  };
  const response = await lightInject(dispatch as never, {
    method: method as never,
    url: '/',
    headers: {},
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    ...(payload !== undefined ? { payload } : {}),
  });
  const text = response.payload;
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}
