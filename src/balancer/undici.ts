// The parts of undici the gateway uses (Pool, Agent, request), each loaded from its own module. undici's index also
// loads fetch, WebSocket, EventSource, the cache stores and the mocks at import: about 9 MB of memory and a third
// of the gateway's start-up time for code a gateway never calls. The types are the package's own. If a new undici
// moves these files, start-up fails at this import (every test catches it), not later.
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import type * as Http2 from 'node:http2';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

/**
 * undici's major version, from its package.json (undefined if unreadable). The connection watch's graceful-GOAWAY
 * takeover is for undici 7's handler only (undici 8 lets the streams finish itself), and so is deferHttp2Client.
 */
export const undiciMajor: number | undefined = (() => {
  try {
    const major = Number.parseInt((load('undici/package.json') as { version?: unknown }).version as string, 10);
    return Number.isInteger(major) ? major : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * The response head an HTTP/2 upstream may send, bounded as an HTTP/1 upstream's is: 16 KB of names and values
 * (proxy/forward.ts headTooLarge), however many fields carry them. node's HTTP/2 client resets a stream whose head
 * (or trailer section) has more than 128 fields (its maxHeaderListPairs) or comes to more than 64 KB counted with 32
 * bytes per field (its SETTINGS_MAX_HEADER_LIST_SIZE), with ENHANCE_YOUR_CALM, and undici passes node neither option:
 * a 1.5 KB head of 300 small fields was relayed from an HTTP/1 upstream and a 502 upstream_reset from an HTTP/2 one,
 * logged as the upstream's own RST_STREAM. These bounds let through every head the 16 KB count passes (one byte per
 * field at least, plus the pseudo-headers); the count refuses the rest, as for HTTP/1. A connection's memory stays
 * bounded by node's maxSessionMemory (10 MB).
 */
const H2_HEAD_FIELDS = 16_384 + 8;
const H2_HEADER_LIST_SIZE = 16_384 + 32 * H2_HEAD_FIELDS;

/**
 * Loads undici's HTTP/2 client file with a node:http2 whose connect() adds the bounds above to the options undici
 * gives (undici's own win where it sets them). The file is compiled as a module of its own, with a require that hands
 * it that node:http2 and resolves everything else as its own require would; nothing else in the process sees it.
 */
function loadHttp2Client(path: string): (...args: unknown[]) => unknown {
  const http2 = load('node:http2') as typeof Http2;
  const connect = (authority: string | URL, options?: Http2.ClientSessionOptions, listener?: () => void): Http2.ClientHttp2Session =>
    http2.connect(
      authority,
      { ...options, maxHeaderListPairs: H2_HEAD_FIELDS, settings: { maxHeaderListSize: H2_HEADER_LIST_SIZE, ...options?.settings } },
      listener,
    );
  const bounded = Object.create(http2, { connect: { value: connect } }) as typeof Http2;
  const module = new Module(path) as Module & { _compile(source: string, filename: string): void };
  module.filename = path;
  module.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(path));
  module.require = ((id: string): unknown => (id === 'node:http2' || id === 'http2' ? bounded : Module.prototype.require.call(module, id))) as NodeJS.Require;
  module._compile(readFileSync(path, 'utf8'), path);
  module.loaded = true;
  // In the stand-in's place, unless other code's copy of the file is there (loadDispatchers).
  load.cache[path] ??= module;
  return module.exports as (...args: unknown[]) => unknown;
}

/**
 * undici's HTTP/2 client (client-h2.js) requires node:http2 as it loads, and undici's Client loads it at once: node's
 * HTTP/2 and TLS stacks, about 2 MB of memory, in every gateway, though only an upstream that negotiates h2 uses
 * them. So its place in the require cache is taken first by a stand-in that loads the real file at the first HTTP/2
 * connection (loadHttp2Client: with the response-head bounds). In undici 7 the file exports one function,
 * connectH2(client, socket), which is all the stand-in is; with another major the real file loads as before (and
 * node's own bounds on a head apply).
 */
function deferHttp2Client(path: string): void {
  let connectH2: ((...args: unknown[]) => unknown) | undefined;
  const standIn = new Module(path);
  standIn.filename = path;
  standIn.loaded = true;
  standIn.exports = function connectH2Deferred(this: unknown, ...args: unknown[]): unknown {
    if (connectH2 === undefined) {
      if (load.cache[path] === standIn) delete load.cache[path];
      connectH2 = loadHttp2Client(path);
    }
    return connectH2.apply(this, args);
  };
  load.cache[path] = standIn;
}

/** The files that hold undici's HTTP/2 client once loaded (undici 7): the client itself, and each that requires the last. */
const H2_HOLDERS = ['client-h2.js', 'client.js', 'pool.js', 'agent.js'];

/**
 * undici's Pool and Agent, on an HTTP/2 client with the response-head bounds (deferHttp2Client). Other code in this
 * process may have loaded undici first (an application that embeds the gateway and uses undici itself, a test's
 * client): its Client then holds the real client-h2.js, without the bounds, and every head of more than 128 fields
 * from an HTTP/2 upstream was a 502. The gateway then loads its own copies of the four files that hold it, around a
 * stand-in, and puts the other code's back in the require cache, so each keeps its own. Everything else undici
 * loads (its symbols, errors, the dispatcher base classes) stays shared.
 */
function loadDispatchers(): { Pool: typeof Undici.Pool; Agent: typeof Undici.Agent } {
  const dispatchers = () => ({
    Pool: load('undici/lib/dispatcher/pool.js') as typeof Undici.Pool,
    Agent: load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent,
  });
  if (undiciMajor !== 7) return dispatchers();
  const paths = H2_HOLDERS.map((file) => load.resolve(`undici/lib/dispatcher/${file}`));
  const theirs = paths.map((path) => load.cache[path]);
  for (const path of paths) delete load.cache[path];
  deferHttp2Client(paths[0]!);
  const ours = dispatchers();
  // Nothing loaded before: the gateway's files stay, as any file it loads does. Else the cache is left as it was.
  if (theirs.some((module) => module !== undefined)) {
    paths.forEach((path, i) => {
      if (theirs[i] === undefined) delete load.cache[path];
      else load.cache[path] = theirs[i];
    });
  }
  return ours;
}
const dispatchers = loadDispatchers();

export const Pool = dispatchers.Pool;
export type Pool = Undici.Pool;
export const Agent = dispatchers.Agent;
export type Agent = Undici.Agent;
/** The base class of every dispatcher (the bounded pool extends it). */
export const Dispatcher = load('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
export type Dispatcher = Undici.Dispatcher;

const dispatcherRequest = load('undici/lib/api/api-request.js') as (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** undici's `request(url, { dispatcher, ... })`, for an explicit dispatcher (the index's wrapper is not loaded). */
export function request(
  url: string,
  options: Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Undici.Dispatcher },
): Promise<Undici.Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const target = new URL(url);
  return dispatcherRequest.call(dispatcher, { ...rest, origin: target.origin, path: `${target.pathname}${target.search}` });
}

/**
 * undici's error for a connection lost (code UND_ERR_SOCKET): a client whose connection ends with it sends the
 * requests it queued meanwhile on a new connection; ended with any other error, it fails them.
 */
export const SocketError = (load('undici/lib/core/errors.js') as { SocketError: new (message: string) => Error }).SocketError;

/**
 * The symbols undici keys its connection state with, for the connection watch (connection-watch.ts): a client's
 * socket and HTTP/2 session, and the session's pending error. Internal to undici, so read from its own module
 * rather than guessed by description; a new undici that renames them makes the watch do nothing, never fail.
 */
export const undiciSymbols = load('undici/lib/core/symbols.js') as {
  readonly kSocket?: symbol;
  readonly kHTTP2Session?: symbol;
  readonly kError?: symbol;
  /** An HTTP/2 session's undici Client (client-h2.js sets it at connect). */
  readonly kClient?: symbol;
  /** A client's connection object (write, resume, busy, destroyed, destroy), null between connections. */
  readonly kHTTPContext?: symbol;
  /** The [event, listener] pairs undici added to an emitter with util.addListener (its own listeners, by name). */
  readonly kListeners?: symbol;
  /** An HTTP/1 socket's count of requests written on it (counted only when the pool has maxRequestsPerClient). */
  readonly kCounter?: symbol;
  /** True on an HTTP/1 socket while a streamed request body is being written (client-h1.js's AsyncWriter). */
  readonly kWriting?: symbol;
};

