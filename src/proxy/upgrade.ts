// Joins a client's upgraded connection (WebSocket) to the upstream's once the upstream has answered 101.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../pipeline/context.js';

/** What tunnelledProtocol reads of a request: its Upgrade header and HTTP version. */
export type UpgradeRequest = Pick<IncomingMessage, 'headers' | 'httpVersionMajor' | 'httpVersionMinor'>;

/**
 * The protocol an upstream is asked to switch to for a client's Upgrade header: "websocket" when the client's list
 * names it (RFC 6455 §4.2.1: compared case-insensitively), else null, and the request goes upstream as a plain one,
 * as RFC 9110 §7.8 lets a server ignore an Upgrade. WebSocket is the one protocol the gateway tunnels: an upgraded
 * connection escapes every phase for as long as it lasts, and the other tokens in use carry HTTP itself over it,
 * h2c (RFC 7540 §3.2, deprecated by RFC 9113 §3.1) and TLS/1.x (RFC 2817): an upstream that switched would serve
 * any request to any path on it, past routing, auth and rate limits. The client's other tokens are not passed on.
 * Null for an HTTP/1.0 request whatever it names: RFC 9110 §7.8 has a server ignore Upgrade in HTTP/1.0 (node's
 * parser flags it all the same), and RFC 6455 §4.1 asks for HTTP/1.1 at least.
 */
export function tunnelledProtocol(req: UpgradeRequest): 'websocket' | null {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return null;
  for (const token of upgrade.split(',')) if (token.trim().toLowerCase() === 'websocket') return 'websocket';
  return null;
}

/**
 * Serializes a status line and headers by hand: after a 101 the socket no longer belongs to node's HTTP layer.
 * Content-Length is left out, whoever set it (the upstream, a response hook): RFC 9110 §8.6 forbids it in a 1xx
 * response, and a client that believed it would read the first bytes of the new protocol as a body. Transfer-Encoding
 * and the other hop-by-hop fields never get here (headers.ts).
 */
function headBlock(statusCode: number, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.toLowerCase() === 'content-length') continue;
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/**
 * How long a tunnel may stay silent once one side has sent its FIN before both sockets are destroyed. For a
 * WebSocket a FIN means the session is over (after the closing handshake, or an abnormal end without one): what is
 * left is the other side's last frames and its own FIN, a round trip away. 5 s of silence is many round trips, with
 * room for a few doubling retransmission timeouts on a lossy link, while a peer that never answers (a node:http
 * 'upgrade' handler: its sockets are allowHalfOpen) holds its connection slot, counted against
 * server.max_connections_per_client, for seconds rather than forever. Silence is per socket, reads and writes alike
 * (socket.setTimeout), like HAProxy's client-fin/server-fin: a protocol that half-closes and goes on streaming, or a
 * slow client still taking the bytes sent before the upstream's FIN, is not cut.
 */
const HALF_CLOSE_GRACE_MS = 5_000;

/**
 * TCP keep-alive on the client's socket of a tunnel, as undici already sets (60 s) on the upstream's: a client that
 * vanished without a FIN or RST (power loss, a NAT entry dropped) is found dead by the kernel's probes and the tunnel
 * closed. An idle bound is the operator's choice (server.timeouts.tunnel_idle, none by default): a WebSocket may
 * rightly stay silent for minutes, and `idle` is the keep-alive wait between requests (5 s by default).
 */
const CLIENT_KEEPALIVE_MS = 60_000;

/** Either end of a tunnel: a net.Socket (or TLSSocket), which can time out on inactivity. */
type TunnelEnd = Duplex & { setTimeout(ms: number, onTimeout: () => void): unknown };

/**
 * What ended a tunnel, as its two sockets tell it (the first of these events decides): `client` or `upstream`, the
 * side whose FIN came first (TCP's order, not the WebSocket closing handshake's: the gateway reads no frames, and
 * RFC 6455 §7.1.1 has the server close TCP first, so a handshake either side began usually ends `upstream`);
 * `error`, a socket that failed (a reset, a dead keep-alive probe) before any FIN; `idle`, a tunnel silent both ways for
 * its route's tunnel_idle, which the gateway closed; `destroyed`, a socket the gateway
 * itself closed before either, which only its stop does (the listener turns it into `shutdown`).
 */
export type TunnelEnding = 'client' | 'upstream' | 'error' | 'idle' | 'destroyed';

/** A closed tunnel's facts, for its log line and metrics; counts are tunnel bytes, never an HTTP head's. */
export interface TunnelSummary {
  /** From the 101 written to the client to the close of the last of the two sockets. */
  readonly durationMs: number;
  /** Bytes read from the client and handed on to the upstream (those sent right behind the Upgrade head included). */
  readonly bytesFromClient: number;
  /** Bytes read from the upstream after its 101 and handed on to the client. */
  readonly bytesFromUpstream: number;
  readonly ending: TunnelEnding;
  /** With ending `error`: the side whose socket failed, and its error (logged as class and code, never a message). */
  readonly errorFrom: 'client' | 'upstream' | undefined;
  readonly error: unknown;
}

/**
 * Thrown by spliceUpgrade, before anything is written to the client, when the upstream's connection has already
 * closed (reset, or destroyed) since its 101: the caller answers an error instead of the 101 (forward.ts's
 * writeOrFail: 502), as no tunnel can be opened. Between the 101 and the splice an async response hook (a plugin's
 * onResponse) may run for up to `middleware.plugin_timeout`; a socket that closed meanwhile never emits 'close' again,
 * so a tunnel joined to it never ended: the client was handed a 101 into a connection nothing relayed and nothing
 * closed (no idle timeout), and its upstream stayed counted in flight (least_conn, the gauge) for good.
 */
export class UpstreamClosedBeforeSplice extends Error {
  constructor() {
    super('the upstream connection closed after its 101, before the tunnel was opened');
    this.name = 'UpstreamClosedBeforeSplice';
  }
}

/**
 * Thrown by spliceUpgrade, before anything is written to the client, when the upstream's 101 does not switch to
 * WebSocket alone (its Upgrade field names another protocol, several, or none): the caller answers 502 instead
 * (forward.ts's writeOrFail). The upstream was asked for websocket and nothing else; RFC 9110 §7.8 lets a server
 * switch only to a protocol the request listed, and RFC 6455 §4.1 has a client fail such a handshake. Tunnelled, an
 * h2c or TLS switch would carry HTTP past every phase (see tunnelledProtocol).
 */
export class UnaskedProtocolSwitch extends Error {
  constructor() {
    super('the upstream switched to a protocol other than websocket');
    this.name = 'UnaskedProtocolSwitch';
  }
}

/** True when a 101's Upgrade field (as relayed: one string) names websocket alone, in any case. */
function switchesToWebSocket(upgrade: OutgoingHttpHeaders[string]): boolean {
  return typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket';
}

/**
 * Writes the upstream's 101 (with the gateway headers) to the client and pipes the two sockets together. Any bytes
 * the client sent after its upgrade request (`ctx.upgradeHead`) go first. See joinTunnel for how it ends;
 * `onClosed` gets no summary when the client had left before the 101 could be written (no tunnel was opened).
 * Throws, having written nothing, when the upstream's 101 is not a switch to WebSocket (UnaskedProtocolSwitch) or its
 * socket is already closed (UpstreamClosedBeforeSplice).
 */
export function spliceUpgrade(
  ctx: RequestContext,
  statusCode: number,
  headers: OutgoingHttpHeaders,
  upstream: Duplex,
  onClosed: (tunnel: TunnelSummary | undefined) => void,
): void {
  const client = ctx.req.socket;
  if (!client.destroyed) {
    if (!switchesToWebSocket(headers.upgrade)) throw new UnaskedProtocolSwitch();
    if (upstream.destroyed) throw new UpstreamClosedBeforeSplice();
  }
  ctx.res.detachSocket(client);
  if (client.destroyed) {
    upstream.destroy();
    onClosed(undefined);
    return;
  }
  client.setKeepAlive(true, CLIENT_KEEPALIVE_MS);
  // latin1, as node writes every other response head: a header value's obs-text bytes (an upstream's 0xE9) go out as
  // they came, where the default UTF-8 turned each into two bytes, a value no other response of the route carries.
  client.write(headBlock(statusCode, headers), 'latin1');
  const head = ctx.upgradeHead;
  if (head && head.length > 0) upstream.write(head);
  // undici hands over its HTTP/1.1 connection's socket, typed as a Duplex
  joinTunnel(client, upstream as TunnelEnd, head?.length ?? 0, ctx.route.timeouts?.tunnelIdleMs ?? 0, onClosed);
}

/** The tunnel's running facts, kept by joinTunnel's listeners (one object per tunnel, no allocation per chunk). */
interface TunnelState {
  readonly openedAt: number;
  /** Bytes relayed so far: [from the client, from the upstream]. */
  readonly bytes: [number, number];
  ending: TunnelEnding | undefined;
  errorFrom: 'client' | 'upstream' | undefined;
  error: unknown;
}

/**
 * Pipes `client` and `upstream` into each other until both are closed, leaving no half-open leftovers:
 * - a FIN from one side is passed on to the other (pipe's end(), after the bytes before it), and starts the grace
 *   period: a socket of the tunnel silent for HALF_CLOSE_GRACE_MS then destroys both. The client's socket is
 *   allowHalfOpen (node:http's), so without it a client's FIN that the upstream never answers left both open;
 * - a side closing abruptly (error, reset, destroyed at shutdown) destroys the other at once: nothing more can be
 *   relayed. A side closing after its FIN (undici's socket is not allowHalfOpen: it closes as soon as the upstream's
 *   FIN arrives) does not: the other may still be flushing the bytes before that FIN to a slower peer, and then
 *   passes the FIN on; the grace period bounds it.
 * - with `idleMs` above 0, a tunnel through which no byte went either way for that long is closed on both sides
 *   (ending `idle`). The client's socket alone is watched: every byte relayed is read from it or written to it.
 * `onClosed` runs once, when both sockets have closed, with what ended the tunnel first and the bytes relayed.
 * `headBytes`: the client's bytes already written upstream (those behind its Upgrade head).
 */
function joinTunnel(
  client: TunnelEnd,
  upstream: TunnelEnd,
  headBytes: number,
  idleMs: number,
  onClosed: (tunnel: TunnelSummary) => void,
): void {
  const state: TunnelState = { openedAt: performance.now(), bytes: [headBytes, 0], ending: undefined, errorFrom: undefined, error: undefined };
  let halfClosed = false;
  let open = 2;
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  if (idleMs > 0) {
    client.setTimeout(idleMs, () => {
      state.ending ??= 'idle';
      destroyBoth();
    });
  }
  const startGrace = (): void => {
    if (halfClosed) return;
    halfClosed = true;
    for (const end of [client, upstream]) if (!end.destroyed) end.setTimeout(HALF_CLOSE_GRACE_MS, destroyBoth);
  };
  for (const [side, other, name, index] of [
    [client, upstream, 'client', 0],
    [upstream, client, 'upstream', 1],
  ] as const) {
    side.once('end', () => {
      state.ending ??= name;
      startGrace();
    });
    side.once('close', () => {
      state.ending ??= 'destroyed'; // neither a FIN nor an error came first: the gateway closed it
      if (--open === 0) onClosed(summarize(state));
      if (other.closed) return;
      if (!side.readableEnded || side.errored) destroyBoth();
      else other.resume(); // its pipe went with `side` (pipe pauses it): read on, to see its FIN; its bytes have nowhere to go
    });
    side.on('error', (err: unknown) => {
      if (state.ending === undefined) {
        state.ending = 'error';
        state.errorFrom = name;
        state.error = err;
      }
      destroyBoth();
    });
    side.pipe(other);
    // Counted beside the pipe's own 'data' listener; bytes read once the other side is gone are dropped, not relayed.
    side.on('data', (chunk: Buffer) => {
      if (!other.destroyed) state.bytes[index] += chunk.length;
    });
  }
  // A FIN already read before the join emits no 'end' again: a client that half-closed right behind its Upgrade,
  // before the 101. pipe() passes it on (it ends `other` for an ended source); it counts as the first FIN and starts
  // the grace period here, or a half-open upstream that never answered it held both connections for good.
  for (const [side, name] of [
    [client, 'client'],
    [upstream, 'upstream'],
  ] as const) {
    if (side.readableEnded) {
      state.ending ??= name;
      startGrace();
    }
  }
}

/** The summary handed to onClosed once both sockets have closed (the duration ends now). */
function summarize(state: TunnelState): TunnelSummary {
  return {
    durationMs: performance.now() - state.openedAt,
    bytesFromClient: state.bytes[0],
    bytesFromUpstream: state.bytes[1],
    ending: state.ending ?? 'destroyed',
    errorFrom: state.errorFrom,
    error: state.error,
  };
}
