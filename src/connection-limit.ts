// Caps open connections per client address, so one address cannot take every slot of server.max_connections.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { GatewayError } from './errors.js';
import { answerAndClose } from './listeners/raw-answer.js';
import { normalizeAddress, type TrustedProxies } from './pipeline/client-address.js';
import { rawErrorResponse } from './pipeline/reply.js';

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
 * Counts open connections per (normalized) peer address. `listener(tls)` is the proxy server's 'connection'
 * listener. A connection over the cap is refused before any request on it is read:
 * - on a cleartext listener it is answered 429 TOO_MANY_CONNECTIONS (nginx's limit_conn answers 503; 429 says "you,
 *   slow down" rather than "the gateway is down"), the gateway's error body with its code, then closed;
 * - on a TLS listener it is closed at once, with no byte written. Before the handshake nothing a TLS client could
 *   read can be written (a cleartext 429 reached it as "wrong version number"), and answering after the handshake
 *   would make every connection over the cap cost the gateway a full handshake, the very work a flood of
 *   connections is capped to spare: nginx's stream limit_conn closes such a connection at the TCP level too.
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

  /** The 'connection' listener of the proxy server: a TLS listener's refusals write nothing (see the class). */
  listener(tls: boolean): (socket: Socket) => void {
    return (socket) => {
      const address = normalizeAddress(socket.remoteAddress ?? '');
      if (address === '' || this.#settings.trusted.has(address)) return;
      const open = this.#open.get(address) ?? 0;
      if (open >= this.#settings.maxPerClient) {
        if (tls) socket.destroy();
        else answerAndClose(socket, rawErrorResponse(TOO_MANY_CONNECTIONS, randomUUID(), this.#settings.proxyBy));
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
}

/** Shared: the refusal of a connection over the cap, on a cleartext listener. */
const TOO_MANY_CONNECTIONS = new GatewayError('TOO_MANY_CONNECTIONS', { headers: { 'retry-after': '1' } });
