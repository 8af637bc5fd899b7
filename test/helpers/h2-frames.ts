// Raw HTTP/2 over TLS for tests: frames no HTTP/2 library sends (a header block left unfinished, CONTINUATION
// frames), and a client that stops reading. Frames are written by hand; HPACK fields are literal, never indexed or
// Huffman-coded (RFC 7541 §6.2.2), so no encoder state is needed.
import { connect, type TLSSocket } from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

/** One frame: 9-byte head, then `payload`. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** One HPACK "literal header field without indexing, new name", no Huffman (names and values under 127 bytes). */
export function field(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** A request's header block: the four pseudo-headers, then `extra`. */
export function requestBlock(method: string, path: string, extra: ReadonlyArray<readonly [string, string]> = [], authority = 'a.test'): Buffer {
  return Buffer.concat([
    field(':method', method),
    field(':scheme', 'https'),
    field(':authority', authority),
    field(':path', path),
    ...extra.map(([n, v]) => field(n, v)),
  ]);
}

/** A frame as received: type, flags, stream, payload. */
export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export interface RawH2 {
  readonly socket: TLSSocket;
  /** Writes bytes as they are. */
  send(...chunks: Buffer[]): void;
  /** Every complete frame received so far (after the server's preface SETTINGS, in order). */
  frames(): ReceivedFrame[];
  /** Milliseconds from the TLS handshake to the connection's close, once it closed. */
  closedAfter(): number | undefined;
  /** Resolves once the connection has closed (by either side). */
  readonly closed: Promise<void>;
}

/**
 * A TLS connection to 127.0.0.1:`port` offering only h2, trusting `ca`. It reads whatever the server sends (unless
 * `read: false`: then nothing is read at all, as a client that never reads the GOAWAY, and the kernel's receive
 * buffer holds what comes, and it never closes: the server's FIN is never read either). A reading client closes once
 * the server has ended its side, as node's TLS sockets do.
 */
export async function rawH2(port: number, ca: Buffer, options: { read?: boolean } = {}): Promise<RawH2> {
  const socket = connect({ port, host: '127.0.0.1', ca, servername: 'a.test', ALPNProtocols: ['h2'] });
  socket.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const start = Date.now();
  let closedAt: number | undefined;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now();
      resolve();
    }),
  );
  let received = Buffer.alloc(0);
  if (options.read === false) socket.pause();
  else socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  return {
    socket,
    send: (...chunks) => void socket.write(Buffer.concat(chunks)),
    frames() {
      const out: ReceivedFrame[] = [];
      for (let at = 0; at + 9 <= received.length; ) {
        const length = received.readUIntBE(at, 3);
        if (at + 9 + length > received.length) break;
        out.push({
          type: received[at + 3]!,
          flags: received[at + 4]!,
          stream: received.readUInt32BE(at + 5) & 0x7fffffff,
          payload: received.subarray(at + 9, at + 9 + length),
        });
        at += 9 + length;
      }
      return out;
    },
    closedAfter: () => (closedAt === undefined ? undefined : closedAt - start),
    closed,
  };
}

/** The client's connection preface and an empty SETTINGS frame. */
export function clientPreface(): Buffer {
  return Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]);
}

/** SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 0: no DATA on any stream until a WINDOW_UPDATE for it. */
export function zeroWindowSettings(): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(0x4, 0);
  payload.writeUInt32BE(0, 2);
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

/** A WINDOW_UPDATE adding `increment` bytes to `stream`'s window (stream 0: the connection's). */
export function windowUpdate(stream: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return frame(FRAME.WINDOW_UPDATE, 0, stream, payload);
}
