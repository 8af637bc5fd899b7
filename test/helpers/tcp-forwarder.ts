// A TCP forwarder tests put between the gateway and a real server (PostgreSQL) so they can cut and restore the link.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

/** A running forwarder from 127.0.0.1:`port` to the target. */
export interface TcpForwarder {
  /** The local port; kept across cut() / restore(). */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops listening and destroys every open connection (both sides): new connections are refused. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /**
   * Silently drops every byte on the connections open now, both ways, and keeps them open: a link a NAT or firewall
   * dropped without a FIN or RST. Connections accepted later forward as usual.
   */
  blackHole(): void;
  /** Same as cut(); for cleanup. */
  close(): Promise<void>;
}

/** Starts forwarding 127.0.0.1:`port` (0 = any free port) to `targetHost:targetPort`. */
export async function startTcpForwarder(targetHost: string, targetPort: number, port = 0): Promise<TcpForwarder> {
  const sockets = new Set<Socket>();
  const pairs: Array<[Socket, Socket]> = [];
  let accepted = 0;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const makeServer = (): Server =>
    createServer((client) => {
      accepted++;
      const upstream = connect(targetPort, targetHost);
      track(client);
      track(upstream);
      // Either side failing tears the pair down, as a dropped link would.
      const teardown = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', teardown);
      upstream.on('error', teardown);
      client.on('close', teardown);
      upstream.on('close', teardown);
      client.pipe(upstream);
      upstream.pipe(client);
      pairs.push([client, upstream]);
    });
  const listen = (server: Server, on: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(on, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });

  let server: Server | undefined = makeServer();
  // A port of our own rather than bind(0)'s, so that restore() can listen on it again (see ports.ts).
  const actualPort = await listen(server, port === 0 ? await freePort() : port);
  const cut = async (): Promise<void> => {
    const closing = server;
    server = undefined;
    if (!closing) return;
    const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    port: actualPort,
    get accepted() {
      return accepted;
    },
    cut,
    async restore() {
      if (server) return;
      const next = makeServer();
      await listen(next, actualPort);
      server = next;
    },
    blackHole() {
      for (const [client, upstream] of pairs.splice(0)) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Read and drop, so neither peer sees back-pressure or a close.
        client.resume();
        upstream.resume();
      }
    },
    close: cut,
  };
}
