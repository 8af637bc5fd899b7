// Lingering close, as nginx does it (lingering_close): an HTTP/1 answer given while the client is still sending its
// body (a 401, 413 or 415 before the upload, the admin listener's refusals) closes the connection, and node closes it
// by destroying the socket as soon as the answer is out (destroySoon). The client's bytes still arriving then meet a
// closed socket, the kernel answers them with a reset, and a client that had not read the answer yet loses it: a
// 20 MB upload refused with 401 saw "connection reset" instead of the 401 in most tries. Instead the gateway sends
// its FIN after the answer and goes on reading, and throwing away, what the client sends, until the client closes
// its side (having read the answer) or LINGER_MS passes: a bound on what one refused client can make it read.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { guardRequestBody } from '../proxy/body-guard.js';

/** How long a closing connection still reads and discards the client's bytes (nginx: lingering_time 30 s, timeout 5 s). */
const LINGER_MS = 5_000;

/** Sockets already set to linger. */
const lingering = new WeakSet<Socket>();

/**
 * True once an answer on `socket` has set it to linger: the connection is over, and a request pipelined behind the
 * answered one (node parses on while the close lingers) must not be served, let alone forwarded, nor logged as a
 * request: the driver drops it unanswered (run.ts) and the socket closes, as when node destroyed it at once.
 */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket);
}

/**
 * Makes node's close of `req`'s connection after the current answer a lingering one. Only for an HTTP/1 request
 * whose body is still on its way (the answer says Connection: close); node calls destroySoon() once that answer is
 * out, which here becomes end() (FIN after the answer) and a bounded wait for the client's FIN, the rest of the body
 * read by node's parser and thrown away (the request is resumed with no reader: a body reader that stopped at a size
 * limit left it paused, and node then stops reading the socket).
 */
export function lingerOnClose(req: IncomingMessage, connection: Socket | null = null): void {
  // undici detaches a request body it destroys from its socket (util.destroy sets an IncomingMessage's socket to
  // null, so that destroying it does not close the connection): a failed attempt's body, answered after that (502
  // once no retry is left), is found by the answer's own socket. Neither: no connection left to linger on.
  const socket = req.socket ?? connection;
  if (socket === null || lingering.has(socket) || socket.destroyed) return;
  lingering.add(socket);
  // An own property shadowing net.Socket's method on this one socket: node's HTTP server calls it by name.
  let closing = false;
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (closing) return;
    closing = true;
    if (this.writable) this.end();
    req.removeAllListeners('data');
    req.resume();
    // A body undici abandoned (an upstream that answered before taking it all) is destroyed, now or soon: node's
    // parser stops reading the socket at the first chunk a destroyed request refuses. Its own flag for a body nobody
    // reads (set by its _dump()) makes the parser drop every chunk instead, and the socket is read again.
    (req as IncomingMessage & { _dumped: boolean })._dumped = true;
    this.resume();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/**
 * A relayed HTTP/1 answer that ended while its client was still sending the body (the upstream answered without
 * taking it all, and undici abandoned the rest): the connection closes after it, lingering, as after the gateway's
 * own early answers. `Connection: close` goes in `headers` when the head is still to be written; a head already sent
 * said keep-alive, and the connection is closed once the answer is out all the same (a server may close after any
 * answer), so a request pipelined behind the upload is never taken.
 */
export function closeAfterRelayedAnswer(req: IncomingMessage, res: ServerResponse, headers: OutgoingHttpHeaders | undefined): void {
  if (headers !== undefined) headers.connection = 'close';
  lingerOnClose(req, res.socket);
  const socket = req.socket ?? res.socket;
  if (socket === null || headers !== undefined) return; // node closes it itself after a head saying close
  res.once('finish', () => socket.destroySoon());
}

/**
 * The same close for an answer relayed from an HTTP/2 upstream, but only once the upload is given up: undici goes on
 * sending an HTTP/2 upstream the body after its answer (an ingestion endpoint that answers 202 at once and reads on),
 * and destroys the body only when the upstream's stream ends (node's and Go's servers reset it once their answer is
 * out and they read no more). A body destroyed before it all arrived is then read and dropped, and the connection
 * closed after the answer; a body that goes on to its end leaves the connection as it was. Without it, a client
 * that sends its whole body before reading was stalled until timeouts.idle + 1 s, then reset, its answer unread.
 */
export function closeWhenUploadAbandoned(req: IncomingMessage, res: ServerResponse, body: Readable = req): void {
  const socket = req.socket ?? res.socket;
  if (socket === null) return;
  // `body` is what undici was given and destroys: the request itself, or a body-limit counter piped from it (which
  // leaves the request paused, never closed).
  body.once('close', () => {
    if (req.complete || socket.destroyed) return;
    lingerOnClose(req, socket);
    if (res.writableFinished) socket.destroySoon();
    else res.once('finish', () => socket.destroySoon());
  });
}

/**
 * An answer relayed from an HTTP/2 upstream that goes on taking the upload, on a connection the answer closes (the
 * client said `Connection: close`, or HTTP/1.0): node destroys the socket as soon as the answer is out, and the part
 * of a whole upload the gateway had not read yet was lost with it (the upstream's stream cancelled, or before, left
 * waiting). Here the close sends FIN after the answer and goes on reading until the request is whole and taken, or
 * its body ends otherwise (the upstream gave it up: closeWhenUploadAbandoned then lingers), then closes lingering.
 * A client that stops sending is ended by node's request timeout, as any unfinished request.
 */
export function closeOnceUploaded(req: IncomingMessage, res: ServerResponse, body: Readable, silenceMs: number): void {
  const socket = req.socket ?? res.socket;
  if (socket === null || lingering.has(socket) || socket.destroyed) return;
  socket.destroySoon = function closeOnceUploaded(this: Socket): void {
    if (this.writable) this.end();
    // The request's body guard stopped with the answer: a client that stops sending is held to the same silence
    // bound here (request_body_chunk, or LINGER_MS without one), time the upstream holds the body back excepted.
    const stopGuard = guardRequestBody(req, silenceMs > 0 ? silenceMs : LINGER_MS, () => this.destroy());
    this.once('close', stopGuard);
    // Then closed as any answer given mid-upload is, lingering: bytes the client still sends (a request pipelined
    // behind, or the rest of an upload the upstream gave up) must not turn the close into a reset. Not twice: an
    // abandoned upload's close has begun lingering already (closeWhenUploadAbandoned).
    const done = (): void => {
      if (lingering.has(this) || this.destroyed) return;
      lingerOnClose(req, this);
      this.destroySoon();
    };
    if (body.readableEnded || body.destroyed) done();
    else {
      body.once('end', done);
      body.once('close', done);
    }
  };
}
