// The backend of the review-smuggling suites: a raw TCP server that records exactly the bytes each connection sent it
// and answers every request head it finds (by path: canned bytes, else a 200 naming the path), keeping the
// connection open, as a keep-alive backend does. What a test asserts on is `received()`: every byte that reached a
// backend, whichever connection carried it.
import { createServer, type Server, type Socket } from 'node:net';

export interface RecordingUpstream {
  readonly port: number;
  /** Every byte received so far, all connections in the order they opened (latin1). */
  received(): string;
  /** The request lines received so far ("GET /x HTTP/1.1"), all connections. */
  requestLines(): string[];
  close(): Promise<void>;
}

/** Starts it on 127.0.0.1; `answers` maps a request path to raw response bytes (latin1). */
export async function startRecordingUpstream(answers: Readonly<Record<string, string>> = {}): Promise<RecordingUpstream> {
  const connections: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const index = connections.push('') - 1;
    let answered = 0;
    socket.on('data', (chunk: Buffer) => {
      connections[index] += chunk.toString('latin1');
      // A crude reading, enough for bodiless requests and for counting: each "\r\n\r\n" ends a head.
      const heads = connections[index]!.split('\r\n\r\n').slice(0, -1);
      for (; answered < heads.length; answered++) {
        const path = / (\S+) HTTP\/1\.[01]\r\n/.exec(`${heads[answered]!}\r\n`)?.[1] ?? '';
        socket.write(Buffer.from(answers[path] ?? `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`, 'latin1'));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    received: () => connections.join(''),
    requestLines: () => connections.join('').match(/[!-~]+ \S+ HTTP\/1\.[01](?=\r\n)/g) ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
