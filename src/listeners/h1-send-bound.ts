// The send bound (server.timeouts.request_body_chunk) for HTTP/1.x answers handed over whole: the HTTP/1.x side of
// h2-guard.ts's #sweepUnsent. forward.ts bounds a relayed download while its upstream still sends; once end() has been
// called (a plugin's respond(), any gateway-made answer, a relayed one whose upstream has finished) nothing did: node
// holds what the kernel has not taken, and a client that read none of a 64 MB plugin answer held it, its connection
// and its max_connections_per_client slot for as long as it kept the connection open. The redirect listener and the
// admin port use it too: their answers are small, but a client pipelining requests it never reads fills the socket
// buffers with them, and node then waits on the answer in progress with no header, request or keep-alive bound running.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.js';
import { cutOutside } from '../pipeline/outside-answer.js';
import { kernelTakenBytes, type HandleOwner } from '../proxy/kernel-taken-bytes.js';

/**
 * How often the responses are looked at: a quarter of the bound, within 250 ms and 30 s (the cadence of node's own
 * connection checks, proxy-listener.ts, and of h2-guard.ts's sweep), so a cut comes at most a quarter late.
 */
function sweepInterval(boundMs: number): number {
  return Math.min(30_000, Math.max(250, Math.floor(boundMs / 4)));
}

/** Logged for an answer the bound cut (its head is out), as forward.ts and h2-guard.ts log the same stall. */
const SEND_TIMEOUT = new GatewayError('CLIENT_SEND_TIMEOUT');

/** What the sweep last saw of a response: the connection's kernel-taken bytes, and since when they stood still. */
interface Seen {
  taken: number;
  since: number;
}

/** A watched exchange: the response now on it (undefined once there is none), and what the sweep last saw. */
interface Watched {
  readonly response: () => ServerResponse | null | undefined;
  readonly seen: Seen;
}

/**
 * Watches the listener's HTTP/1.x responses from their request to their 'finish' or 'close', and the answers to
 * Upgrade requests the gateway does not switch (an error, the upstream's refusal, a plugin's respond()), whose
 * response the driver makes on the socket node hands over (run.ts handleUpgrade): those never pass 'request'. A
 * response whose end() has been called, that has its connection (a pipelined one queued behind another has none yet)
 * and whose connection's kernel-taken bytes have not moved for `sendMs` is cut: its request logged
 * CLIENT_SEND_TIMEOUT, its connection destroyed. Progress is the kernel's (kernelTakenBytes), so a client reading at
 * any steady pace keeps it. A switched tunnel is never cut: its 101 goes on the socket raw, its response never ends.
 * One sweep for the listener, every quarter of the bound, running only while something is watched.
 */
export class UnsentAnswers {
  readonly #watched = new Map<object, Watched>();
  readonly #sendMs: () => number;
  #timer: NodeJS.Timeout | undefined = undefined;

  /** `sendMs`: the bound as a reload leaves it (0: none), read at each sweep. */
  constructor(sendMs: () => number) {
    this.#sendMs = sendMs;
  }

  /** The server's 'request' listener; HTTP/2 streams are h2-guard.ts's. */
  readonly track = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.httpVersionMajor === 2 || this.#watched.has(res)) return;
    this.#watch(res, () => res);
    const forget = (): void => void this.#watched.delete(res);
    res.once('finish', forget);
    res.once('close', forget);
  };

  /**
   * The server's 'upgrade' listener: the socket is watched until it closes, through the response the driver
   * assigns to it (node's own socket._httpMessage, which run.ts reads too).
   */
  readonly trackUpgrade = (_req: IncomingMessage, socket: Duplex): void => {
    if (this.#watched.has(socket)) return;
    this.#watch(socket, () => (socket as { _httpMessage?: ServerResponse | null })._httpMessage);
    socket.once('close', () => void this.#watched.delete(socket));
  };

  #watch(key: object, response: () => ServerResponse | null | undefined): void {
    this.#watched.set(key, { response, seen: { taken: -1, since: Number.NaN } });
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const sendMs = this.#sendMs();
    this.#timer = setTimeout(this.#sweep, sweepInterval(sendMs > 0 ? sendMs : 30_000));
    this.#timer.unref();
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const sendMs = this.#sendMs();
    const now = performance.now();
    for (const [key, { response, seen }] of this.#watched) {
      const res = response();
      const socket = res?.socket ?? null;
      if (sendMs <= 0 || res == null || !res.writableEnded || res.writableFinished || socket === null || socket.destroyed) {
        seen.since = Number.NaN;
        continue;
      }
      const taken = kernelTakenBytes(socket as unknown as HandleOwner);
      if (taken < 0) continue; // no handle to read: a closing socket, which ends the response on its own
      if (Number.isNaN(seen.since) || taken !== seen.taken) {
        seen.taken = taken;
        seen.since = now;
      } else if (now - seen.since >= sendMs) {
        this.#watched.delete(key);
        cutOutside(res, SEND_TIMEOUT);
        socket.destroy();
      }
    }
    if (this.#watched.size > 0) this.#arm();
  };
}
