// Raw HTTP/1.1 clients for lingering closes: an upload refused early (401, 413) whose connection the gateway closes
// with a lingering close (FIN after the answer, the rest read and dropped), and what a client sends after it.
import { connect, type Socket } from 'node:net';
import { sleep, waitFor } from './wait.js';

/**
 * A connection to 127.0.0.1:`port` that keeps sending after the server's FIN, as an uploading client does (net's
 * default would end our side when the refusal's FIN arrives, and nothing after it would be written).
 */
export function halfOpenSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export interface AcrossRefusalOptions {
  /** All of `start` + `rest` in one write before any answer, instead of `rest` after the refusal's head. */
  readonly oneWrite: boolean;
  /** How long to wait for the refusal's head, and for the connection to close after our FIN (generous). */
  readonly waitMs: number;
}

/**
 * On a half-open connection to `port`: sends `start`, waits for the refusal's head (unless `oneWrite`), then `rest`;
 * gives the gateway 500 ms to parse it and run whatever it dispatched (generous: a shared, slow machine), then sends
 * our FIN, which ends the lingering close, and waits for the connection to close. Resolves with every byte received.
 */
export async function sendAcrossRefusal(port: number, start: string, rest: string, options: AcrossRefusalOptions): Promise<string> {
  const socket = await halfOpenSocket(port);
  let data = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  try {
    if (options.oneWrite) socket.write(start + rest);
    else {
      socket.write(start);
      await waitFor(() => data.includes('\r\n\r\n'), 'the refusal', options.waitMs);
      socket.write(rest);
    }
    await sleep(500);
    socket.end();
    await waitFor(() => closed, 'the connection closed', options.waitMs);
    return data;
  } finally {
    socket.destroy();
  }
}
