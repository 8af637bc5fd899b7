// A TCP forwarder tests put between the gateway and a real server (PostgreSQL, Redis) so they can cut and restore the
// link, move it to another server, or make each connection slow to open.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

/** A running forwarder from 127.0.0.1:`port` to the target. */
export interface TcpForwarder {
  /** The local port; kept across cut() / restore(). */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections accepted and not yet closed (the accepted side only). */
  open(): number;
  /** Connections opened to the target from now on go to `targetPort` on the same host; those open stay where they are. */
  moveTo(targetPort: number): void;
  /** Stops listening and destroys every open connection (both sides): new connections are refused. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /**
   * Silently drops every byte on the connections open now, both ways, and keeps them open: a link a NAT or firewall
   * dropped without a FIN or RST. Connections accepted later forward as usual.
   */
  blackHole(): void;
  /**
   * A network partition: blackHole() for the connections open now, and every connection accepted from now on is
   * held silent too (accepted, nothing ever forwarded or answered), until heal(). A client sees a connect that
   * succeeds and a handshake that never answers (as behind a middlebox), never a refusal.
   */
  partition(): void;
  /** Ends partition(): new connections forward again; those held silent meanwhile stay silent (as a NAT's would). */
  heal(): void;
  /** Same as cut(); for cleanup. */
  close(): Promise<void>;
}

export interface TcpForwarderOptions {
  /**
   * Each accepted connection reaches the target this long after it was accepted (a remote or TLS server's
   * handshake); what the client sends meanwhile waits. Default 0: at once.
   */
  readonly openDelayMs?: number;
}

/** Starts forwarding 127.0.0.1:`port` (0 = any free port) to `targetHost:targetPort`. */
export async function startTcpForwarder(targetHost: string, targetPort: number, port = 0, options: TcpForwarderOptions = {}): Promise<TcpForwarder> {
  const openDelayMs = options.openDelayMs ?? 0;
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  const pairs: Array<[Socket, Socket]> = [];
  let accepted = 0;
  let partitioned = false;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const link = (client: Socket): void => {
    const upstream = connect(targetPort, targetHost);
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
  };
  const makeServer = (): Server =>
    createServer((client) => {
      accepted++;
      track(client);
      clients.add(client);
      client.once('close', () => clients.delete(client));
      if (partitioned) {
        // Read and drop: the client's writes succeed, nothing ever comes back.
        client.on('error', () => void client.destroy());
        client.resume();
        return;
      }
      if (openDelayMs === 0) return link(client);
      client.pause();
      const onEarlyError = (): void => void client.destroy();
      client.on('error', onEarlyError);
      setTimeout(() => {
        if (client.destroyed) return;
        client.off('error', onEarlyError);
        link(client);
        client.resume();
      }, openDelayMs);
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
  const blackHole = (): void => {
    for (const [client, upstream] of pairs.splice(0)) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      // Read and drop, so neither peer sees back-pressure or a close.
      client.resume();
      upstream.resume();
    }
  };
  return {
    port: actualPort,
    get accepted() {
      return accepted;
    },
    open: () => clients.size,
    moveTo(next) {
      targetPort = next;
    },
    cut,
    async restore() {
      if (server) return;
      const next = makeServer();
      await listen(next, actualPort);
      server = next;
    },
    blackHole,
    partition() {
      partitioned = true;
      blackHole();
    },
    heal() {
      partitioned = false;
    },
    close: cut,
  };
}
