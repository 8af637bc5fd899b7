// HTTP/1.1 pipelining on the proxy port: one request of a connection runs at a time, as nginx, HAProxy and Envoy
// serve it. node's HTTP server parses every request a client pipelines and emits each one at once, its response
// queued behind the earlier ones: the driver then ran them all together, so a single connection had as many
// requests going upstream as it could pipeline. 40 GETs written in one go took all 8 connections of an upstream and
// its whole queue of 16, and every other client got 503 upstream_busy: server.max_connections_per_client bounded
// nothing. Now a request pipelined behind another waits until that one has been answered (its response gets the
// connection) before it runs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The most requests one connection may have waiting behind the one being answered; a connection with more is
 * closed at once, as RFC 9112 §9.3.2 lets a server close a connection with pipelined requests unanswered (the
 * client retries them). The connection is read on meanwhile (stopping it would also hide a client that leaves: its
 * FIN or reset would go unseen while its request ran on), so this is what bounds the requests a client can make the
 * gateway hold (1.6 KB of heap each, where one 64 KiB read holds some 2,400 short ones). Clients pipeline a few
 * requests, benchmarks 16 or so.
 */
export const MAX_WAITING_REQUESTS = 128;

/**
 * The most bytes of request heads one connection may have waiting (their targets and header lines, as parsed). The
 * count alone let 127 heads of 16 KB each wait on every connection: 2 MB a connection, some 450 MB of heap from one
 * client address's 250 connections. 128 KiB holds 128 ordinary heads of 1 KB; a connection past it is closed as one
 * past the count is.
 */
export const MAX_WAITING_HEAD_BYTES = 128 * 1024;

/** Each connection's requests waiting for their turn: how many, their heads' bytes, and the last one queued. */
const WAITING = new WeakMap<Socket, { count: number; bytes: number; last: IncomingMessage | undefined }>();

/** The bytes of a request's head as node holds it: its target and every header name and value. */
function headBytes(req: IncomingMessage): number {
  let bytes = (req.url ?? '').length + 16;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i++) bytes += raw[i]!.length + 2;
  return bytes;
}

/**
 * node counts timeouts.request from a request's first byte, and a queued request's body is not read before its turn
 * (node stops reading the connection once some 16 KB of it are buffered): a POST pipelined behind a long answer
 * timed out while it waited, and the connection was cut with that answer half written; one whose turn came late had
 * only what its wait left of the bound to upload its body. A queued request's own bound is counted from its turn
 * instead (boundFromTurn), and node's timeout of it is set aside (isQueuedRequestTimeout). Errors of that own bound.
 */
const FROM_TURN = new WeakSet<Error>();

/**
 * True when `err` is node's request timeout (ERR_HTTP_REQUEST_TIMEOUT) of a queued request: the last request queued
 * on the connection has not got its whole body yet, so node's parser is in that body. The caller leaves the
 * connection alone: that request gets timeouts.request from its turn, and the answer being written is not cut.
 * False for anything else (the request answered first, or a head trickling behind an answer: handled as before).
 */
export function isQueuedRequestTimeout(err: NodeJS.ErrnoException, socket: Socket): boolean {
  if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' || FROM_TURN.has(err)) return false;
  const req = WAITING.get(socket)?.last;
  return req !== undefined && !req.complete;
}

/** The request timeout node would raise for `req` (its 'clientError'), timeouts.request after its turn. */
function boundFromTurn(req: IncomingMessage, res: ServerResponse, socket: Socket): void {
  const server = (socket as Socket & { server?: { requestTimeout?: number; emit(event: string, ...args: unknown[]): boolean } }).server;
  const ms = server?.requestTimeout ?? 0;
  if (server === undefined || ms <= 0 || req.complete) return;
  const timer = setTimeout(() => {
    if (req.complete || socket.destroyed) return;
    const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    FROM_TURN.add(err);
    server.emit('clientError', err, socket);
  }, ms);
  // The response closes when it is done, or with its connection (no listener per request on the socket).
  res.once('close', () => clearTimeout(timer));
}

/**
 * Wraps the proxy server's 'request' handler. An HTTP/1 request whose response has the connection (the usual case:
 * nothing before it) is handled at once, as are HTTP/2 streams. One queued behind another response is handed to
 * `handle` when its response gets the connection (node's 'socket' event, once the one before has finished); if the
 * client leaves first it is never run, never sent upstream and never logged: nothing of it was served.
 * `onTooMany` is told of a connection closed for having more than MAX_WAITING_REQUESTS waiting, or heads of more than
 * MAX_WAITING_HEAD_BYTES (the count and bytes waiting then).
 */
export function oneRequestAtATime(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  onTooMany?: (socket: Socket, waiting: number, waitingBytes: number) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.httpVersionMajor !== 1 || res.socket !== null) {
      handle(req, res);
      return;
    }
    const socket = req.socket;
    if (socket.destroyed) return;
    let waiting = WAITING.get(socket);
    if (waiting === undefined) WAITING.set(socket, (waiting = { count: 0, bytes: 0, last: undefined }));
    const bytes = headBytes(req);
    waiting.bytes += bytes;
    if (++waiting.count > MAX_WAITING_REQUESTS || waiting.bytes > MAX_WAITING_HEAD_BYTES) {
      // Told once: node goes on emitting the rest of the bytes it read, which find the socket destroyed.
      onTooMany?.(socket, waiting.count, waiting.bytes);
      socket.destroy();
      return;
    }
    const state = waiting;
    state.last = req;
    res.once('socket', () => {
      state.count--;
      state.bytes -= bytes;
      boundFromTurn(req, res, socket);
      handle(req, res);
    });
  };
}
