// Caps open connections per client, so one client cannot take every slot of server.max_connections. A client is what
// the rate limiter calls one: an IPv4 address, or an IPv6 network of middleware.rate_limit.ipv6_prefix bits (a /64).
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { GatewayError } from './errors.js';
import { answerAndClose } from './listeners/raw-answer.js';
import { normalizeAddress, type TrustedProxies } from './pipeline/client-address.js';
import { rawErrorResponse } from './pipeline/reply.js';
import { addressBucketKey } from './ratelimit/address-key.js';

/** The settings a reload may change. */
export interface ConnectionLimitSettings {
  /** `server.max_connections_per_client`. */
  readonly maxPerClient: number;
  /** Peers exempt from the cap (`server.trusted_proxies`): a load balancer in front carries many clients. */
  readonly trusted: TrustedProxies;
  /** `server.proxy_by`, for the refusal's X-Proxy-By header. */
  readonly proxyBy: string;
  /**
   * `middleware.rate_limit.ipv6_prefix`: IPv6 peers are counted per network of this many bits, as the limiter keys
   * them. One end site holds a whole /64 (privacy addresses rotate through it), so counting single addresses let it
   * take the whole of server.max_connections with a few of them. Default 64, the setting's default.
   */
  readonly ipv6Prefix?: number;
}

const DEFAULT_IPV6_PREFIX = 64;

/**
 * Counts open connections per client: the peer's rate-limit address key (address-key.ts), so every spelling of one
 * address, and every address of one IPv6 /64, is one client. `listener(tls)` is the proxy server's 'connection'
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

  /** Open connections of the client `address` belongs to (for tests and metrics). */
  openFrom(address: string): number {
    return this.#open.get(this.#keyOf(normalizeAddress(address))) ?? 0;
  }

  #keyOf(address: string): string {
    return addressBucketKey(address, this.#settings.ipv6Prefix ?? DEFAULT_IPV6_PREFIX);
  }

  /**
   * The 'connection' listener of the proxy server: a TLS listener's refusals write nothing (see the class).
   * `onRefused` is told of each connection refused: its client, and the request id of its 429 (none on TLS).
   * `answerHeaders`: headers the listener's every answer carries, which its 429 carries too (the admin port's
   * security headers, admin/answer-headers.ts).
   */
  listener(
    tls: boolean,
    onRefused?: (client: string, requestId: string | undefined) => void,
    answerHeaders?: Readonly<Record<string, string>>,
  ): (socket: Socket) => void {
    const refusal = answerHeaders === undefined ? TOO_MANY_CONNECTIONS : new GatewayError('TOO_MANY_CONNECTIONS', { headers: { ...TOO_MANY_CONNECTIONS.headers, ...answerHeaders } });
    return (socket) => {
      const address = normalizeAddress(socket.remoteAddress ?? '');
      if (address === '' || this.#settings.trusted.has(address)) return;
      // The key is fixed for the connection's life: a reload that changes ipv6_prefix releases what it took.
      const key = this.#keyOf(address);
      const open = this.#open.get(key) ?? 0;
      if (open >= this.#settings.maxPerClient) {
        const id = tls ? undefined : randomUUID();
        if (id === undefined) socket.destroy();
        else answerAndClose(socket, rawErrorResponse(refusal, id, this.#settings.proxyBy));
        onRefused?.(address, id);
        return;
      }
      this.#open.set(key, open + 1);
      socket.once('close', () => {
        const left = (this.#open.get(key) ?? 1) - 1;
        if (left <= 0) this.#open.delete(key);
        else this.#open.set(key, left);
      });
    };
  }
}

/** Shared: the refusal of a connection over the cap, on a cleartext listener. */
const TOO_MANY_CONNECTIONS = new GatewayError('TOO_MANY_CONNECTIONS', { headers: { 'retry-after': '1' } });
