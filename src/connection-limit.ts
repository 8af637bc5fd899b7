// Caps open connections per client address, so one address cannot take every slot of server.max_connections.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { ERROR_CODES } from './errors.js';
import { normalizeAddress, type TrustedProxies } from './pipeline/client-address.js';

/** The settings a reload may change. */
export interface ConnectionLimitSettings {
  /** `server.max_connections_per_client`. */
  readonly maxPerClient: number;
  /** Peers exempt from the cap (`server.trusted_proxies`): a load balancer in front carries many clients. */
  readonly trusted: TrustedProxies;
  /** `server.proxy_by`, for the refusal's X-Proxy-By header. */
  readonly proxyBy: string;
}

/**
 * Counts open connections per (normalized) peer address. Its `onConnection` is the proxy server's 'connection'
 * listener: a connection over the cap is answered 429 TOO_MANY_CONNECTIONS (nginx's limit_conn answers 503; 429 says
 * "you, slow down" rather than "the gateway is down") and closed before any request on it is read.
 */
export class ClientConnectionLimit {
  #settings: ConnectionLimitSettings;
  readonly #open = new Map<string, number>();

  constructor(settings: ConnectionLimitSettings) {
    this.#settings = settings;
  }

  /** New cap or trusted list (reload); connections already open stay counted. */
  update(settings: ConnectionLimitSettings): void {
    this.#settings = settings;
  }

  /** Open connections of `address` (for tests and metrics). */
  openFrom(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  readonly onConnection = (socket: Socket): void => {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    if (address === '' || this.#settings.trusted.has(address)) return;
    const open = this.#open.get(address) ?? 0;
    if (open >= this.#settings.maxPerClient) {
      refuse(socket, this.#settings.proxyBy);
      return;
    }
    this.#open.set(address, open + 1);
    socket.once('close', () => {
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left <= 0) this.#open.delete(address);
      else this.#open.set(address, left);
    });
  };
}

/** Writes the 429 and closes once it is flushed; the HTTP parser never reads a request from this socket. */
function refuse(socket: Socket, proxyBy: string): void {
  const spec = ERROR_CODES.TOO_MANY_CONNECTIONS;
  const id = randomUUID();
  const body = JSON.stringify({ error: spec.message, request_id: id });
  socket.on('error', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${spec.status} ${spec.message}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
      `retry-after: 1\r\nx-proxy-by: ${proxyBy}\r\nx-request-id: ${id}\r\nx-response-time: 0ms\r\nconnection: close\r\n\r\n${body}`,
  );
  socket.destroySoon();
}
