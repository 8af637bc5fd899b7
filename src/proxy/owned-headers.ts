// The one list of request headers the gateway owns: no client sets them, and no rewrite or plugin may set or remove them.
//
// Backends trust these headers because the gateway writes them. A client's copy is dropped whatever its spelling:
// names are compared lower-cased with "_" read as "-", since CGI, WSGI and Rack servers map `X_User_Id` and
// `X-User-Id` to the same HTTP_X_USER_ID. Forwarding headers are the exception for a trusted proxy, whose
// correctly spelled copies pass (the gateway then extends the X-Forwarded-For chain).

/** Identity of the caller (a verified token) and, once API keys exist, of the consumer. */
export const CONSUMER_HEADERS: readonly string[] = ['x-consumer-id', 'x-consumer-name'];

/** Headers the gateway always writes itself (or that name the gateway). */
export const GATEWAY_HEADERS: readonly string[] = ['x-request-id', 'x-proxy-by'];

/**
 * Headers that tell a backend where a request came from or which URL it asked for. Any name starting with
 * `x-forwarded-` is one too (X-Forwarded-Port, -Prefix, -Server, -Ssl, ...).
 */
export const FORWARDING_HEADERS: readonly string[] = ['forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url'];

/**
 * Headers by which a CDN or another proxy names the client's address to the backend behind it: Akamai's and
 * Cloudflare's True-Client-IP, Cloudflare's CF-Connecting-IP, Fastly's, Google App Engine's, Envoy's, and the names
 * client-address libraries read after X-Forwarded-For (npm's request-ip, Rails' Client-IP). The gateway itself reads
 * none of them, but a backend configured for its CDN does: from a client they are the same lie as a forged
 * X-Real-IP, so a client's copy is dropped as a forwarding header's is (passed from a trusted proxy only). Unlike
 * those, the gateway never writes them: a route rewrite or a plugin may set or remove them (a plugin that writes
 * True-Client-IP from ctx.clientAddress for such a backend), so they are not owned.
 */
export const CLIENT_ADDRESS_HEADERS: readonly string[] = [
  'true-client-ip', 'cf-connecting-ip', 'cf-connecting-ipv6', 'cf-pseudo-ipv4', 'fastly-client-ip',
  'x-appengine-user-ip', 'x-envoy-external-address', 'x-client-ip', 'client-ip', 'x-cluster-client-ip',
  'x-forwarded', 'forwarded-for', 'x-original-forwarded-for', 'x-originating-ip', 'x-remote-ip', 'x-remote-addr',
];

/** Trace context, owned once tracing is on (the gateway continues or starts the trace itself). */
export const TRACING_HEADERS: readonly string[] = ['traceparent', 'tracestate'];

const FORWARDED_PREFIX = 'x-forwarded-';

/** What decides the list: the configured identity header names, and whether tracing is on. */
export interface OwnedHeaderOptions {
  /** `middleware.auth.user_id_header` and `.user_email_header` (any case, any spelling). */
  readonly identityHeaders: readonly string[];
  /** True when the gateway writes traceparent/tracestate. Default false. */
  readonly tracing?: boolean;
  /**
   * Header names the route table decides on (every route's `match.headers` keys, lower-case, as configured). A
   * client's copy of one in another `_`/`-` spelling is dropped: routing never read it, and a CGI-style backend would
   * read it as the very header the route was chosen by (`X_Api_Version` is HTTP_X_API_VERSION, as `X-Api-Version`).
   */
  readonly judgedHeaders?: readonly string[];
}

/** How a header name relates to the gateway: not owned, owned, or a forwarding header (owned unless from a trusted proxy). */
export type Ownership = 'none' | 'owned' | 'forwarding';

/** What the list holds of a name: Ownership's kinds, and a CDN's client-address header (dropped from clients, not owned). */
type Kind = Exclude<Ownership, 'none'> | 'client-address';

/** A header name as the comparison reads it: lower-case, "_" as "-". */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.indexOf('_') === -1 ? lower : lower.replace(/_/g, '-');
}

/** The owned-header list of one configuration. Built once at start-up (and on reload); lookups are one Set probe. */
export class OwnedHeaders {
  /** Every owned name (canonical spelling) → its kind; `x-forwarded-*` names are matched by prefix on top. */
  readonly #kinds: ReadonlyMap<string, Kind>;
  /** A judged header's canonical spelling → the spellings routes name it by (judgedHeaders). */
  readonly #judged: ReadonlyMap<string, ReadonlySet<string>>;

  constructor(options: OwnedHeaderOptions) {
    const kinds = new Map<string, Kind>();
    for (const name of FORWARDING_HEADERS) kinds.set(name, 'forwarding');
    for (const name of CLIENT_ADDRESS_HEADERS) kinds.set(name, 'client-address');
    for (const name of [...options.identityHeaders.map(headerKey), ...CONSUMER_HEADERS, ...GATEWAY_HEADERS]) kinds.set(name, 'owned');
    if (options.tracing) for (const name of TRACING_HEADERS) kinds.set(name, 'owned');
    this.#kinds = kinds;
    const judged = new Map<string, Set<string>>();
    for (const name of options.judgedHeaders ?? []) {
      const spelled = name.toLowerCase();
      const key = headerKey(spelled);
      if (!judged.has(key)) judged.set(key, new Set());
      judged.get(key)!.add(spelled);
    }
    this.#judged = judged;
  }

  /** Every owned name in its canonical spelling (forwarding headers included; `x-forwarded-*` as a pattern). */
  get names(): readonly string[] {
    return [...[...this.#kinds].filter(([, kind]) => kind !== 'client-address').map(([name]) => name), `${FORWARDED_PREFIX}*`];
  }

  /** How `name` (any case, any "_"/"-" spelling) relates to the gateway. */
  ownership(name: string): Ownership {
    const kind = this.#kindOf(headerKey(name));
    return kind === 'client-address' ? 'none' : kind;
  }

  /** True for a CDN's client-address header (CLIENT_ADDRESS_HEADERS, any spelling): dropped from clients, not owned. */
  isClientAddressHeader(name: string): boolean {
    return this.#kindOf(headerKey(name)) === 'client-address';
  }

  /**
   * True when `name` is a header the gateway owns. Route header rewrites and plugins call this and refuse to set or
   * remove such a header.
   */
  isOwned(name: string): boolean {
    return this.ownership(name) !== 'none';
  }

  /**
   * Should a client's header `name` (as node delivers it: lower-case) be dropped before the request goes upstream?
   * Owned headers always; forwarding headers unless the peer is a trusted proxy and the name is spelled exactly as
   * the standard one (a trusted proxy never writes `x_forwarded_for`); a header routes decide on, in a spelling no
   * route names it by (judgedHeaders). Runs for every request header: one Map probe, two with judged headers.
   */
  dropFromClient(name: string, peerTrusted: boolean): boolean {
    // Node lower-cases incoming names already: no toLowerCase on this path.
    const key = name.indexOf('_') === -1 ? name : name.replace(/_/g, '-');
    const kind = this.#kindOf(key);
    if (kind === 'none') {
      if (this.#judged.size === 0) return false;
      const spellings = this.#judged.get(key);
      return spellings !== undefined && !spellings.has(name);
    }
    if (kind === 'owned') return true;
    return !peerTrusted || key !== name;
  }

  #kindOf(key: string): Kind | 'none' {
    const kind = this.#kinds.get(key);
    if (kind !== undefined) return kind;
    // 0x78: "x", a cheap first test before the prefix comparison.
    return key.charCodeAt(0) === 0x78 && key.startsWith(FORWARDED_PREFIX) ? 'forwarding' : 'none';
  }
}

/** The list with the default identity headers (X-User-Id, X-User-Email) and tracing off. */
export const DEFAULT_OWNED_HEADERS = new OwnedHeaders({ identityHeaders: ['x-user-id', 'x-user-email'] });

/**
 * True when `name` is owned by the gateway under `owned` (default: the default configuration). For features that
 * let users name headers (route rewrites, plugins): they must refuse an owned one.
 */
export function isOwnedHeader(name: string, owned: OwnedHeaders = DEFAULT_OWNED_HEADERS): boolean {
  return owned.isOwned(name);
}

/** Lower case with "_" read as "-": how CGI-style backends fold header names (X_User_Id → HTTP_X_USER_ID). */
export const canonicalHeaderName = headerKey;

/** Response headers the gateway sets on every answer. */
const OWNED_RESPONSE: ReadonlySet<string> = new Set(['x-proxy-by', 'x-request-id', 'x-response-time']);

/**
 * True when `name` is a response header the gateway sets itself (route response rewrites must not touch it);
 * `traceHeader` is `tracing.response_header` when tracing is on.
 */
export function isOwnedResponseHeader(name: string, traceHeader = ''): boolean {
  const key = headerKey(name);
  return OWNED_RESPONSE.has(key) || (traceHeader !== '' && key === headerKey(traceHeader));
}
