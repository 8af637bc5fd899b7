// The send bound (server.timeouts.request_body_chunk) for HTTP/1.x answers handed over whole: the HTTP/1.x side of
// h2-guard.ts's #sweepUnsent. forward.ts bounds a relayed download while its upstream still sends; once end() has been
// called (a plugin's respond(), any gateway-made answer, a relayed one whose upstream has finished) nothing did: node
// holds what the kernel has not taken, and a client that read none of a 64 MB plugin answer held it, its connection
// and its max_connections_per_client slot for as long as it kept the connection open. The redirect listener and the
// admin port use it too: their answers are small, but a client pipelining requests it never reads fills the socket
// buffers with them, and node then waits on the answer in progress with no header, request or keep-alive bound running.
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import { cutOutside } from '../pipeline/outside-answer.js';
import { cutBegunResponse } from '../pipeline/cut-response.js';
import { responseInProgress } from '../pipeline/last-request.js';
import { kernelTakenBytes, type HandleOwner } from '../proxy/kernel-taken-bytes.js';

/**
 * How often the connections are looked at: a quarter of the bound, within 250 ms and 30 s (the cadence of node's own
 * connection checks, proxy-listener.ts, and of h2-guard.ts's sweep), so a cut comes at most a quarter late.
 */
function sweepInterval(boundMs: number): number {
  return Math.min(30_000, Math.max(250, Math.floor(boundMs / 4)));
}

/** Logged for an answer the bound cut (its head is out), as forward.ts and h2-guard.ts log the same stall. */
const SEND_TIMEOUT = new GatewayError('CLIENT_SEND_TIMEOUT');

/** What the sweep last saw of a connection: the answer it was sending, its kernel-taken bytes, since when they stood still. */
interface Seen {
  res: unknown;
  taken: number;
  since: number;
}

/**
 * Watches the listener's connections, not its requests: a listener and a map entry per response, the first design,
 * cost the gateway 1.31x its CPU time a request (paired, bench/ab.ts core), a connection's entry costs nothing per
 * request. The sweep reads each connection's response in progress (node's own socket._httpMessage): an HTTP/1.x
 * response, or the answer the driver makes to an Upgrade it does not switch (an error, the upstream's refusal, a
 * plugin's respond(); run.ts handleUpgrade assigns it to the socket). One whose end() has been called and whose
 * connection's kernel-taken bytes have not moved for `sendMs` is cut: its request logged CLIENT_SEND_TIMEOUT, its
 * connection destroyed. A pipelined response waits behind the one in progress and is judged once it is in progress
 * itself. Progress is the kernel's (kernelTakenBytes), so a client reading at any steady pace keeps it. A switched
 * tunnel is never cut: its 101 goes on the socket raw, and its response never ends. An HTTP/2 connection has no
 * response in progress (h2-guard.ts bounds its streams). One sweep for the listener, every quarter of the bound,
 * running only while connections are open.
 */
export class UnsentAnswers {
  readonly #watched = new Map<Socket, Seen>();
  readonly #sendMs: () => number;
  #timer: NodeJS.Timeout | undefined = undefined;

  /** `sendMs`: the bound as a reload leaves it (0: none), read at each sweep. */
  constructor(sendMs: () => number) {
    this.#sendMs = sendMs;
  }

  /**
   * The server's 'connection' listener, or 'secureConnection' on a TLS server (whose 'connection' is the TCP socket
   * under the TLS one, which never carries a response): watched until it closes.
   */
  readonly watch = (socket: Socket): void => {
    this.#watched.set(socket, { res: undefined, taken: -1, since: Number.NaN });
    socket.once('close', () => void this.#watched.delete(socket));
    if (this.#timer === undefined) this.#arm();
  };

  #arm(): void {
    const sendMs = this.#sendMs();
    this.#timer = setTimeout(this.#sweep, sweepInterval(sendMs > 0 ? sendMs : 30_000));
    this.#timer.unref();
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const sendMs = this.#sendMs();
    const now = performance.now();
    for (const [socket, seen] of this.#watched) {
      const res = responseInProgress(socket) as ServerResponse | null | undefined;
      if (sendMs <= 0 || res == null || !res.writableEnded || res.writableFinished || socket.destroyed) {
        // Nothing held to judge: forget the response last judged, which an idle keep-alive connection would otherwise
        // keep reachable (with its request's context and a plugin's whole answer) until it closes.
        seen.res = undefined;
        seen.since = Number.NaN;
        continue;
      }
      const taken = kernelTakenBytes(socket as unknown as HandleOwner);
      if (taken < 0) continue; // no handle to read: a closing socket, which ends the response on its own
      if (Number.isNaN(seen.since) || res !== seen.res || taken !== seen.taken) {
        seen.res = res;
        seen.taken = taken;
        seen.since = now;
      } else if (now - seen.since >= sendMs) {
        this.#watched.delete(socket);
        cutOutside(res, SEND_TIMEOUT);
        // Node still holds part of it: a body framed by nothing would read as whole after an orderly close.
        cutBegunResponse(res);
        socket.destroy();
      }
    }
    if (this.#watched.size > 0) this.#arm();
  };
}
