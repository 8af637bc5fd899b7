// A raw TCP client for what an HTTP library will not send: hop-by-hop request headers, Upgrade handshakes.
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface RawResponse {
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Opens a connection to 127.0.0.1:`port`. */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Parses a response head ("HTTP/1.1 200 OK\r\n...") into status and headers. */
export function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(statusLine!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status, headers };
}

/**
 * Sends `request` verbatim (it should say `Connection: close`) and resolves with the parsed response once the
 * server closes the connection. Rejects after `timeoutMs` (default 5 s).
 */
export async function rawRequest(port: number, request: string, timeoutMs = 5_000): Promise<RawResponse> {
  const socket = await openSocket(port);
  socket.write(request);
  return responseUntilClose(socket, timeoutMs);
}

/**
 * What the server writes on `socket` (plain or TLS) until it closes the connection, parsed as one response: the head,
 * and everything after it as the body. Rejects after `timeoutMs`, or when the connection closes without a head.
 */
export function responseUntilClose(socket: Duplex, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response in ${timeoutMs} ms: ${JSON.stringify(data)}`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      const split = data.indexOf('\r\n\r\n');
      if (split === -1) {
        reject(new Error(`connection closed without a response head: ${JSON.stringify(data)}`));
        return;
      }
      resolve({ ...parseHead(data.slice(0, split)), body: data.slice(split + 4) });
    });
  });
}

/** Reads from `socket` until `predicate(all data so far)` holds; resolves with that data. */
export function readUntil(socket: Socket, predicate: (data: Buffer) => boolean, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      if (predicate(data)) finish();
    };
    const onEnd = (): void => finish(new Error(`connection ended before the expected data: ${JSON.stringify(data.toString())}`));
    const timer = setTimeout(() => finish(new Error(`timed out; got ${JSON.stringify(data.toString())}`)), timeoutMs);
    function finish(err?: Error): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(data);
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/**
 * Writes `text` on a new connection to `port`, reads nothing for `quietMs`, then reads until the gateway closes the
 * connection or sends nothing more for 2 s; resolves with the number of responses received and whether the connection
 * was closed. For pipelined floods sent by a client that does not read.
 */
export function pipelineUnread(port: number, text: string, quietMs: number): Promise<{ responses: number; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause();
    socket.write(text);
    let received = '';
    let idle: NodeJS.Timeout | undefined;
    const done = (closed: boolean): void => {
      clearTimeout(idle);
      socket.destroy();
      resolve({ responses: (received.match(/HTTP\/1\.1 \d{3} /g) ?? []).length, closed });
    };
    socket.on('close', () => done(true));
    setTimeout(() => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        idle?.refresh();
      });
      idle = setTimeout(() => done(false), 2_000);
      socket.resume();
    }, quietMs);
  });
}
