// The ctx a plugin hook receives: a read-only view of the RequestContext plus respond(), headers and state.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { CALLER, CONSUMER } from '../auth/caller.js';
import type { RequestContext } from '../pipeline/context.js';
import type {
  PluginConsumer,
  PluginContext,
  PluginHeaders,
  PluginRequest,
  PluginResponseBody,
  PluginUpstream,
  PluginUser,
} from './contract.js';
import { checkHeaderValues, checkedHeaderName, GuardedHeaders } from './headers.js';
import { isOwnedHeader, type OwnedByConfig } from './owned-headers.js';

/** What a plugin asked to answer with; sent by the chain once the hook returns. */
export interface PendingResponse {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly payload: string | Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** Facts of the chain every facade of it shares (the route's service, the headers the config makes the gateway's). */
export interface FacadeScope {
  /** The route's service when it has exactly one (no split). */
  readonly service: string | undefined;
  readonly owned: OwnedByConfig;
}

/** Which hook is running: decides what respond() and the header views allow. */
export type HookStage = 'request' | 'upstream' | 'response' | 'log' | 'idle';

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** The request snapshot (built on first use, shared by the plugins of one request). */
export function snapshotRequest(rc: RequestContext): PluginRequest {
  const url = rc.req.url ?? '/';
  const q = url.indexOf('?');
  // No prototype: the names are the client's, and `?__proto__=x` or `?constructor=y` must be parameters like any
  // other, not the object's prototype or Object.prototype's members.
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  if (q !== -1) {
    for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
      const previous = query[name];
      query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
    }
    // Frozen like the rest: the snapshot is shared by the request's plugins, and one must not change what the next reads.
    for (const name in query) if (Array.isArray(query[name])) Object.freeze(query[name]);
  }
  const length = rc.req.headers['content-length'];
  const parsed = length === undefined ? Number.NaN : Number(length);
  return Object.freeze({
    method: rc.req.method ?? 'GET',
    path: rc.path,
    query: Object.freeze(query),
    headers: frozenHeaders(rc.req.headers),
    contentLength: Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : undefined,
  });
}

/**
 * The request's headers, frozen with their arrays copied: node hands Set-Cookie over as an array, the very one the
 * request goes upstream with, so a plugin pushing onto it changed what the backend got (outside onUpstreamRequest and
 * the owned-header guard) and what the next plugin read. Over HTTP/2 they read as over HTTP/1.1: node gives the
 * pseudo-headers (":method", ":authority"...) and no `host`, so a plugin keyed on the host read undefined over
 * HTTP/2 on a port where HTTP/1.1 worked. The pseudo-headers are left out (method and path are `request`'s own) and
 * `host` is the :authority, as the routes' conditions and the upstream read it (proxy/headers.ts; the driver has
 * refused a Host that disagrees with it).
 */
function frozenHeaders(headers: IncomingHttpHeaders): PluginRequest['headers'] {
  const copy: Record<string, string | readonly string[] | undefined> = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    const value = headers[name];
    copy[name] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  const authority = headers[':authority'];
  if (typeof authority === 'string' && copy.host === undefined) copy.host = authority;
  return Object.freeze(copy);
}

/**
 * JSON.stringify's replacer for a respond() body: a TypeError for a value whose JSON is not what it holds.
 * A promise (a body not awaited), a Map or Set, an ArrayBuffer, a DataView or a typed array other than a top-level
 * Uint8Array (sent as bytes) were answered 200 `{}` (or `{"0":1,"1":2}`), at any depth. A stream (a file's
 * ReadStream) went out as its internals, the file's path included, and its descriptor stayed open; an Error as `{}`;
 * a fetch Response, Headers or URLSearchParams as `{}`. So: anything that is an EventEmitter (streams, sockets), an
 * Error, or an object of a class with no toJSON whose JSON would be `{}` (no own enumerable property). A Buffer is
 * JSON through its own toJSON, which runs before this, and stays as it was; so does a Date, a URL, and an object of
 * a class of the plugin's own that holds its data in fields.
 */
function refuseLossyJson(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  let what: string | undefined;
  if (typeof (value as { then?: unknown }).then === 'function') what = 'a promise (await it first)';
  else if (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet) what = 'a Map or Set';
  else if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer || ArrayBuffer.isView(value)) what = 'an ArrayBuffer or a view of one';
  else if (value instanceof Blob) what = 'a Blob';
  else if (value instanceof EventEmitter) what = 'a stream or another EventEmitter (read it first)';
  else if (value instanceof Error) what = 'an Error (send its message)';
  else if (emptyJsonOfClass(value)) what = 'an object whose JSON is {} (a fetch Response, Headers, URLSearchParams...)';
  if (what !== undefined) throw new TypeError(`respond body holds ${what}, which JSON cannot carry (send bytes as a Uint8Array)`);
  return value;
}

/**
 * An object of a class (not a plain object or an array) without toJSON and without an own enumerable property. A
 * boxed primitive (`new Number(5)`) is JSON as its value, and a plain object of another realm (vm) has a prototype
 * whose own prototype is null: neither is refused.
 */
function emptyJsonOfClass(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null || Object.getPrototypeOf(proto) === null || Array.isArray(value)) return false;
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key in value) if (Object.hasOwn(value, key)) return false;
  return true;
}

/** Serialises a respond() body: JSON for objects, text for strings, bytes as they are. */
function encodeBody(body: PluginResponseBody): { contentType: string | undefined; payload: string | Uint8Array } {
  if (body === undefined || body === null) return { contentType: undefined, payload: '' };
  if (typeof body === 'string') return { contentType: 'text/plain; charset=utf-8', payload: body };
  if (body instanceof Uint8Array) return { contentType: 'application/octet-stream', payload: body };
  if (typeof body === 'object') {
    // Checked here, in the plugin's call: a toJSON() that returns undefined (or a function, a symbol) leaves no text,
    // which failed later, outside the hook, as the gateway's own 500 rather than the plugin's failure.
    const payload: unknown = JSON.stringify(body, refuseLossyJson);
    if (typeof payload !== 'string') throw new TypeError('respond body serialises to no JSON text');
    return { contentType: 'application/json; charset=utf-8', payload };
  }
  throw new TypeError('respond body must be a string, bytes, an object or an array');
}

/**
 * respond()'s `headers` must be a plain object (`{ name: value }`), or undefined/null for none. Its own enumerable
 * properties were read with Object.entries, so a string sent one header per character ("0: a", "1: b"), an array one
 * per element, and a Map, a fetch Headers or a number sent none at all, silently.
 */
function checkHeaderRecord(headers: unknown): void {
  const proto: unknown = typeof headers === 'object' && headers !== null ? Object.getPrototypeOf(headers) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError('respond() headers must be a plain object of name: value strings');
  }
}

/** One plugin's view of one request. Created on the first hook of that plugin that runs for the request. */
export class PluginFacade implements PluginContext {
  readonly #rc: RequestContext;
  readonly #scope: FacadeScope;
  readonly #request: () => PluginRequest;
  #state: Map<unknown, unknown> | undefined = undefined;
  #upstreamHeaders: GuardedHeaders | undefined = undefined;
  #responseHeaders: GuardedHeaders | undefined = undefined;
  // The chain's controls are private, read and set through the static functions below: a plugin holds this object
  // as its ctx, and public fields were its to overwrite (a plugin's own `ctx.pending = 'started'` made every request
  // a 500 "internal" naming no plugin; an object there, an answer whose Content-Length its body did not match).
  /** Set by the chain around each hook. */
  #stage: HookStage = 'idle';
  /** Set when a hook of this plugin was abandoned (timeout): its late calls then throw instead of acting. */
  #abandoned = false;
  #pending: PendingResponse | undefined = undefined;

  /** The chain's: the hook stage the facade is in ('idle' between hooks). */
  static setStage(facade: PluginFacade, stage: HookStage): void {
    facade.#stage = stage;
  }

  /** The chain's: a hook of this facade timed out; its late calls throw from now on. */
  static abandon(facade: PluginFacade): void {
    facade.#abandoned = true;
  }

  static isAbandoned(facade: PluginFacade): boolean {
    return facade.#abandoned;
  }

  /** The answer a hook asked for with respond(), if any. */
  static pendingOf(facade: PluginFacade): PendingResponse | undefined {
    return facade.#pending;
  }

  constructor(rc: RequestContext, scope: FacadeScope, request: () => PluginRequest) {
    this.#rc = rc;
    this.#scope = scope;
    this.#request = request;
  }

  get request(): PluginRequest {
    return this.#request();
  }

  get clientAddress(): string {
    return this.#rc.clientAddress;
  }

  get requestId(): string {
    return this.#rc.id;
  }

  get route(): string | undefined {
    return this.#rc.route.name;
  }

  /** The chosen upstream's service once there is one, else the route's (undefined for a split before the choice). */
  get service(): string | undefined {
    return this.#rc.service ?? this.#scope.service;
  }

  get user(): PluginUser | undefined {
    const user = CALLER.get(this.#rc);
    return user === undefined ? undefined : { id: user.id, email: user.email };
  }

  get consumer(): PluginConsumer | undefined {
    const consumer = CONSUMER.get(this.#rc);
    return consumer === undefined ? undefined : { id: consumer.id, name: consumer.name };
  }

  get state(): Map<unknown, unknown> {
    return (this.#state ??= new Map());
  }

  /**
   * The facade for this plugin's next hook on the same request once a hook was abandoned (plugin_timeout): the same
   * request and `state`, but headers of its own. The abandoned hook keeps this one, whose late calls go nowhere; on
   * one facade shared, they landed on the next run's headers (an error reply's, bound to it meanwhile).
   */
  static successorOf(facade: PluginFacade): PluginFacade {
    const next = new PluginFacade(facade.#rc, facade.#scope, facade.#request);
    next.#state = facade.state;
    return next;
  }

  get status(): number {
    return this.#rc.status;
  }

  get upstream(): PluginUpstream | undefined {
    const peer = this.#rc.peer;
    return peer === undefined ? undefined : { name: peer.name, address: peer.label };
  }

  get durationMs(): number {
    const rc = this.#rc;
    return rc.durationMs >= 0 ? rc.durationMs : Math.round((performance.now() - rc.startedAt) * 100) / 100;
  }

  get upstreamHeaders(): PluginHeaders {
    return (this.#upstreamHeaders ??= new GuardedHeaders('request', this.#scope.owned));
  }

  get responseHeaders(): PluginHeaders {
    return (this.#responseHeaders ??= new GuardedHeaders('response', this.#scope.owned));
  }

  /** The chain's: points the header views at this hook's record (undefined: none, so calls throw). */
  static bindHeaders(
    facade: PluginFacade,
    upstream: Record<string, string | string[]> | undefined,
    response: Record<string, string | string[] | number | undefined> | undefined,
  ): void {
    if (upstream !== undefined || facade.#upstreamHeaders !== undefined) GuardedHeaders.retarget(facade.upstreamHeaders as GuardedHeaders, upstream);
    if (response !== undefined || facade.#responseHeaders !== undefined) GuardedHeaders.retarget(facade.responseHeaders as GuardedHeaders, response);
  }

  /** The chain's: undoes this hook's edits of the response headers (an onResponse abandoned at plugin_timeout is skipped). */
  static undoResponseEdits(facade: PluginFacade): void {
    facade.#responseHeaders?.undoEdits();
  }

  respond(status: number, body?: PluginResponseBody, headers?: Readonly<Record<string, string>>): void {
    if (this.#abandoned) throw new TypeError('respond() after the hook timed out');
    if (this.#stage !== 'request' && this.#stage !== 'upstream') throw new TypeError('respond() is only available in onRequest and onUpstreamRequest');
    if (this.#pending !== undefined) throw new TypeError('respond() was already called');
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new TypeError('respond() status must be an integer from 200 to 599');
    const extra: Record<string, string> = {};
    if (headers !== undefined && headers !== null) {
      checkHeaderRecord(headers);
      // Checked here, as ctx.responseHeaders.set checks: a header node refuses would otherwise throw only when the
      // reply is written, outside the hook, and surface as an internal error rather than this plugin's.
      for (const [name, value] of Object.entries(headers)) {
        const key = checkedHeaderName(name);
        // Names are case-insensitive: { 'X-A': '1', 'x-a': '2' } sent only the last, and the plugin never knew.
        if (Object.hasOwn(extra, key)) throw new TypeError(`respond() headers name ${key} twice`);
        if (isOwnedHeader(key, 'response', this.#scope.owned)) throw new TypeError(`header ${key} is owned by the gateway`);
        checkHeaderValues(key, [value]);
        extra[key] = value;
      }
    }
    const { contentType, payload } = encodeBody(body);
    // A 204, 205 or 304 goes out without its body (reply.ts), so without the type derived from it too: a 304's
    // headers update what a cache stored (RFC 9111 §4.3.4), and a "text/plain" for a dropped body would replace its type.
    const bodiless = status === 204 || status === 205 || status === 304;
    this.#pending = { status, contentType: extra['content-type'] ?? (bodiless ? undefined : contentType), payload, headers: headers === undefined ? EMPTY : extra };
  }
}
