// An upstream that answers each request with canned raw bytes chosen by its path, then closes: for answers no HTTP
// server library would send (malformed HTTP, a 304 with a Content-Length, a reason phrase in another charset).
import { createServer, type Socket } from 'node:net';

export interface CannedUpstream {
  readonly port: number;
  close(): Promise<void>;
}

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';

/** Starts it on 127.0.0.1; `answers` maps a request path to the bytes (latin1) sent back, anything else gets 404. */
export async function startCannedUpstream(answers: Readonly<Record<string, string>>): Promise<CannedUpstream> {
  const answer = (socket: Socket): void => {
    let head = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeAllListeners('data');
      socket.end(Buffer.from(answers[head.split(' ')[1] ?? ''] ?? NOT_FOUND, 'latin1'));
    });
  };
  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
