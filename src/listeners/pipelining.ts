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

/** Each connection's requests waiting for their turn. */
const WAITING = new WeakMap<Socket, { count: number }>();

/**
 * Wraps the proxy server's 'request' handler. An HTTP/1 request whose response has the connection (the usual case:
 * nothing before it) is handled at once, as are HTTP/2 streams. One queued behind another response is handed to
 * `handle` when its response gets the connection (node's 'socket' event, once the one before has finished); if the
 * client leaves first it is never run, never sent upstream and never logged: nothing of it was served.
 * `onTooMany` is told of a connection closed for having more than MAX_WAITING_REQUESTS waiting.
 */
export function oneRequestAtATime(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  onTooMany?: (socket: Socket, waiting: number) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.httpVersionMajor !== 1 || res.socket !== null) {
      handle(req, res);
      return;
    }
    const socket = req.socket;
    if (socket.destroyed) return;
    let waiting = WAITING.get(socket);
    if (waiting === undefined) WAITING.set(socket, (waiting = { count: 0 }));
    if (++waiting.count > MAX_WAITING_REQUESTS) {
      // Told once: node goes on emitting the rest of the bytes it read, which find the socket destroyed.
      onTooMany?.(socket, waiting.count);
      socket.destroy();
      return;
    }
    const state = waiting;
    res.once('socket', () => {
      state.count--;
      handle(req, res);
    });
  };
}
