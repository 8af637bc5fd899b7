// The public plugin contract: the types a plugin author codes against (and definePlugin). Semver-stable.
import type { Registry } from 'prom-client';
//
// A plugin module's default export is a plain object ({ name, validate?, create }); nothing has to be imported
// from Portcullis to write one. These types (and definePlugin) only help an author's editor and compiler.

/** A value that may be awaited. Every hook may be synchronous or async. */
export type Awaitable<T> = T | Promise<T>;

/** The request as the client sent it. Read-only: header names are lower-case. */
export interface PluginRequest {
  readonly method: string;
  /** The path without the query string, as received (e.g. "/users/42"). */
  readonly path: string;
  /** The query string's parameters; a repeated name gives an array. */
  readonly query: Readonly<Record<string, string | readonly string[]>>;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Content-Length as a number, or undefined when absent (no body, or chunked). */
  readonly contentLength: number | undefined;
}

/** The authenticated caller (a valid access token was sent). */
export interface PluginUser {
  readonly id: string;
  readonly email: string;
}

/** The API-key caller, once API keys exist. */
export interface PluginConsumer {
  readonly id: string;
  readonly name: string;
}

/** The upstream a request was sent to. */
export interface PluginUpstream {
  /** The upstream's `name` in the config. */
  readonly name: string;
  /** host:port */
  readonly address: string;
}

/**
 * Headers a hook may edit. Names are case-insensitive strings: a name of another type (undefined, a number) is a
 * TypeError for `get`, `set` and `delete` alike, as for node's own getHeader/setHeader. `set` and `delete` throw a
 * TypeError for a header the gateway owns (X-Request-ID, X-Forwarded-*, the identity headers, hop-by-hop and framing
 * headers, ...).
 */
export interface PluginHeaders {
  /** The value, several values joined with ", ", or undefined. */
  get(name: string): string | undefined;
  set(name: string, value: string | readonly string[]): void;
  delete(name: string): void;
}

/**
 * A response body for ctx.respond: an object or array is sent as JSON, a string as text/plain, bytes (a Uint8Array,
 * a Buffer) as-is. An object holding, at any depth, what JSON cannot carry (a promise, a Map or Set, an ArrayBuffer,
 * a DataView or another typed array, a Blob, a stream or another EventEmitter, an Error, an object of a class whose
 * JSON would be `{}` such as a fetch Response) is a TypeError at the call, as is a number or a boolean.
 */
export type PluginResponseBody = string | Uint8Array | Record<string, unknown> | readonly unknown[] | null | undefined;

/** What every hook receives. One object per plugin and request; it is discarded with the request. */
export interface PluginContext {
  readonly request: PluginRequest;
  /** The client's address (X-Forwarded-For's client when the peer is a trusted proxy). */
  readonly clientAddress: string;
  /** The request id, also sent upstream and to the client as X-Request-ID. */
  readonly requestId: string;
  /** The matched route's name ("proxy" for the implicit catch-all route). */
  readonly route: string | undefined;
  /** The service the route sends to ("default" for load_balancing). */
  readonly service: string | undefined;
  /** Set when the caller sent a valid access token. */
  readonly user: PluginUser | undefined;
  /** Set for an API-key caller (once API keys exist). */
  readonly consumer: PluginConsumer | undefined;
  /** Per-request storage private to this plugin (shared by its hooks for the same request). */
  readonly state: Map<unknown, unknown>;
  /**
   * Ends the request with this response (onRequest and onUpstreamRequest only): it gets the gateway's headers,
   * the response hooks and the log line like any gateway-made response. A second call throws. Its arguments are
   * checked at the call (a TypeError): `status` an integer from 200 to 599; `headers` undefined, null or a plain
   * object of string values (not a Map, a fetch Headers, an array or a string), each name once in any case.
   */
  respond(status: number, body?: PluginResponseBody, headers?: Readonly<Record<string, string>>): void;
  /** The headers about to be sent upstream (onUpstreamRequest). */
  readonly upstreamHeaders: PluginHeaders;
  /** The headers about to be sent to the client (onResponse). */
  readonly responseHeaders: PluginHeaders;
  /** The response status (onResponse, onLog; 0 before). */
  readonly status: number;
  /** The upstream of the last attempt, when the request was forwarded (onResponse, onLog). */
  readonly upstream: PluginUpstream | undefined;
  /** Milliseconds since the request arrived (onResponse: so far; onLog: the whole request). */
  readonly durationMs: number;
}

/** The hooks of a plugin instance; every one is optional and may be async. */
export interface PluginHooks {
  /** After authentication and the rate limit, for requests that passed them. May call ctx.respond. */
  onRequest?(ctx: PluginContext): Awaitable<void>;
  /** After the upstream is chosen and the route's rewrites applied, per attempt. May edit ctx.upstreamHeaders. */
  onUpstreamRequest?(ctx: PluginContext): Awaitable<void>;
  /** On every response of the route (proxied or the gateway's own errors), before its headers are sent. */
  onResponse?(ctx: PluginContext): Awaitable<void>;
  /** Once per request, after the response, whatever happened. */
  onLog?(ctx: PluginContext): Awaitable<void>;
  /** On shutdown, and when a reload removes or re-creates this instance. */
  close?(): Awaitable<void>;
}

/**
 * A key-value store private to the plugin (keys are namespaced; the gateway's own state is out of reach). Every
 * method checks its arguments when called and throws a TypeError (the store is not asked) for: a key that is not a
 * string of 1 to 512 characters, or holds an unpaired UTF-16 surrogate (Redis would store it as U+FFFD, so two such
 * keys would be one); a `ttlMs` that is not a number above 0 and at most 100 years.
 */
export interface PluginStore {
  get(key: string): Promise<string | undefined>;
  /** Stores a string (well-formed Unicode: no unpaired surrogate); it expires after `ttlMs` milliseconds (never when omitted). */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Adds 1 to a counter and returns the new value; a new counter expires `ttlMs` after its first increment. */
  incr(key: string, ttlMs: number): Promise<number>;
  /**
   * The gateway's token bucket: one token from bucket `key`, which holds `burst_size` tokens and refills at
   * `requests_per_minute`. `requests_per_minute` is a finite number above 0 (0.5: one every two minutes),
   * `burst_size` a whole number from 1, and the bucket must refill from empty within 100 years
   * (`burst_size / requests_per_minute` minutes); anything else (Infinity, NaN, a string, a fractional or negative
   * burst) throws a TypeError, with the memory store and Redis alike.
   */
  take(key: string, limit: { readonly requests_per_minute: number; readonly burst_size: number }): Promise<PluginTakeResult>;
}

export interface PluginTakeResult {
  readonly allowed: boolean;
  readonly remaining: number;
  /** When refused: milliseconds until a token is available. */
  readonly retryAfterMs: number;
}

/** The shape of a Prometheus metric a plugin registers (prom-client's configuration). */
export interface PluginMetricOptions {
  /** The metric's name; it is prefixed with `portcullis_plugin_` on /metrics. */
  readonly name: string;
  readonly help: string;
  /** Label names ([a-zA-Z_][a-zA-Z0-9_]*, each once) in an array; anything else is a TypeError at registration. */
  readonly labelNames?: readonly string[];
}

/**
 * The gateway's Prometheus registry, through which a plugin's metrics appear on the admin /metrics. A counter's or
 * gauge's inc()/dec() (and those of its labels() children) throws a TypeError for NaN, which would otherwise stick
 * to the series for the life of the process; gauge set(NaN) is allowed.
 */
export interface PluginMetrics {
  /** The registry itself, for a plugin that builds prom-client metrics of its own. */
  readonly registry: Registry;
  counter(options: PluginMetricOptions): { inc(labels?: Record<string, string>, value?: number): void };
  gauge(options: PluginMetricOptions): { set(labels: Record<string, string>, value: number): void; inc(labels?: Record<string, string>, value?: number): void };
  /** `buckets`: finite numbers in increasing order, each once (else a TypeError); the +Inf bucket is implied. */
  histogram(options: PluginMetricOptions & { readonly buckets?: readonly number[] }): {
    observe(labels: Record<string, string>, value: number): void;
  };
}

/**
 * A logger (pino's API) whose lines carry `plugin: <instance name>`. Each method takes `(fields, message?)`: fields
 * an object that is not an array (null or undefined for none; a string alone is the message, as in pino), the
 * message a string; anything else (a number or an array as fields, a message that is not a string) throws a TypeError.
 */
export interface PluginLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What create() receives besides the instance's config. */
export interface PluginApi {
  readonly logger: PluginLogger;
  readonly metrics: PluginMetrics;
  readonly store: PluginStore;
}

/** A plugin module's default export. */
export interface Plugin<Config = unknown> {
  /** The plugin's own name, for logs (the instance name comes from the config). */
  readonly name: string;
  /** Checks the instance's config at start-up, reload and check-config; a thrown Error's message is the config error. */
  validate?(config: unknown): void;
  /** Makes one instance; called at start-up and when a reload changes the instance's module or config. */
  create(config: Config, api: PluginApi): Awaitable<PluginHooks>;
}

/** Identity helper: `export default definePlugin({ ... })` gives the object its types without a cast. */
export function definePlugin<Config = unknown>(plugin: Plugin<Config>): Plugin<Config> {
  return plugin;
}
