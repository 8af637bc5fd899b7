// A bounded queue in front of one upstream's undici pool: at most `connections` requests run, at most `queueLimit`
// wait, each for at most `queueTimeoutMs`; the rest get 503 UPSTREAM_BUSY at once.
//
// undici's own queue is unbounded and cannot cancel a request that is still waiting in it: a flood (or a client that
// left) would hold memory and, once dispatched, a connection. Requests wait here instead, where a wait can end (client
// gone, timeout) without touching the pool. The limits are constructor parameters, so pools of different services can
// be built with different ones.
import type { Dispatcher } from 'undici';
import { Dispatcher as DispatcherBase } from './undici.js';
import { GatewayError } from '../errors.js';
import { endOpeningConnections } from './opening-connections.js';

/** The limits of one pool. */
export interface QueueLimits {
  /** Requests running at once: the pool's connection count (pipelining is off). */
  readonly connections: number;
  /** Requests allowed to wait for a running one to finish (`load_balancing.queue_limit`). */
  readonly queueLimit: number;
  /** Longest wait before 503 (`load_balancing.queue_timeout`), in ms. */
  readonly queueTimeoutMs: number;
}

const RETRY_AFTER = { 'retry-after': '1' };
/**
 * Refused here at once: the request never reached the upstream (its body untouched), so the driver may retry it on
 * another upstream of the service, any method, within `retries` (not a health failure: a busy upstream is not a sick
 * one). A wait that timed out is not retried: it has already cost the client `queue_timeout`.
 */
const QUEUE_FULL = new GatewayError('UPSTREAM_BUSY', { details: 'upstream queue full', headers: RETRY_AFTER, retryable: true });
const QUEUE_TIMEOUT = new GatewayError('UPSTREAM_BUSY', { details: 'upstream queue wait timed out', headers: RETRY_AFTER });
const POOL_CLOSED = new GatewayError('PROXY_ERROR', { details: 'upstream pool closed' });
/** The context handed to onRequestStart at dispatch time (the pool's own comes later and is not relayed). */
const NO_CONTEXT = Object.freeze({});

/**
 * One request through the bounded pool. To the caller's handler it is the controller from the moment of dispatch,
 * so an abort works while the request waits here, and between dispatch and undici's own onRequestStart (then it is
 * applied as soon as undici hands over its controller). To the pool it is the handler, relaying every callback.
 */
class BoundedRequest implements Dispatcher.DispatchHandler, Dispatcher.DispatchController {
  readonly options: Dispatcher.DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  /**
   * The pool it was dispatched to (it runs there, whichever pool of its upstream frees the slot), or, when it waited
   * through a reload that replaced that pool, the replacement it starts on (#startWaiting).
   */
  owner: BoundedPool;
  #real: Dispatcher.DispatchController | undefined = undefined;
  #reason: Error | null = null;
  #pauseWanted = false;
  /** 'queued' (waiting here), 'running' (given to the pool), 'done' (slot released, handler told). */
  state: 'queued' | 'running' | 'done' = 'queued';
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(owner: BoundedPool, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.owner = owner;
    this.options = options;
    this.#handler = handler;
  }

  // Controller side (used by the caller's handler).
  get aborted(): boolean {
    return this.#reason !== null;
  }
  get paused(): boolean {
    return this.#real?.paused ?? this.#pauseWanted;
  }
  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.state === 'done' || this.#reason !== null) return;
    this.#reason = reason;
    if (this.state === 'queued') this.fail(reason);
    else this.#real?.abort(reason); // without a real controller yet: applied in onRequestStart
  }

  pause(): void {
    if (this.#real) this.#real.pause();
    else this.#pauseWanted = true;
  }

  resume(): void {
    if (this.#real) this.#real.resume();
    else this.#pauseWanted = false;
  }

  /** Ends the request with `error` without involving the pool (full queue, timeout, abort while waiting). */
  fail(error: Error): void {
    if (this.state === 'done') return;
    const wasQueued = this.state === 'queued';
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.owner.finished(this, wasQueued);
    this.#handler.onResponseError?.(this, error);
  }

  /**
   * The upstream's trailers as undici received them (HTTP/2: undici 7 hands new-style handlers an empty parsed set and
   * keeps the real ones on its controller). Relayed, so the forwarder reads them through this wrapper too.
   */
  get rawTrailers(): Dispatcher.DispatchController['rawTrailers'] {
    return this.#real?.rawTrailers;
  }

  // Handler side (called by the undici pool).
  /**
   * undici calls this once a connection is ready for the request, before writing any of it. A request whose client
   * left while the connection was being made is refused by throwing its reason, never by `controller.abort()`: over
   * HTTP/1 undici's abort destroys the socket, so the connection that a departed client had waited for (the whole
   * slow connect or TLS handshake) was thrown away, and the next request in the queue had to make another, while
   * its client waited again. undici catches the throw (client-h1.js and client-h2.js writeH1/writeH2 around
   * onConnect), fails the request with it (our onResponseError: the slot is released and the caller's handler hears
   * the reason, as after an abort), writes nothing, and gives the connection to the next request.
   */
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#real = controller;
    if (this.#reason !== null) throw this.#reason;
    if (this.#pauseWanted) controller.pause();
  }

  onRequestUpgrade(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: import('node:stream').Duplex): void {
    this.#release(); // the socket leaves the pool with the upgrade
    this.#handler.onRequestUpgrade?.(this, statusCode, headers, socket);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.#handler.onResponseStart?.(this, statusCode, headers, statusMessage);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#handler.onResponseData?.(this, chunk);
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#release();
    this.#handler.onResponseEnd?.(this, trailers);
  }

  onResponseError(_c: Dispatcher.DispatchController | null, error: Error): void {
    this.#release();
    this.#handler.onResponseError?.(this, error);
  }

  #release(): void {
    if (this.state !== 'running') return;
    this.state = 'done';
    this.owner.finished(this, false);
  }
}

/**
 * The running requests and the wait queue of one upstream. Shared by its pools when it has two: an HTTP/2 group's
 * upstream gets an HTTP/1.1 pool for its WebSocket handshakes (backend.ts upgradeDispatcher), and
 * `connections_per_upstream` and `queue_limit` bound that upstream, not each pool.
 */
export class UpstreamSlots {
  running = 0;
  readonly queue: BoundedRequest[] = [];
  /** The limits of the upstream's newest pool: after a reload, its older pools' requests are judged by them too. */
  limits: QueueLimits;

  constructor(limits: QueueLimits) {
    this.limits = limits;
  }
}

/**
 * The dispatcher of one upstream: the undici pool behind a bounded, cancellable wait queue. Used exactly like the
 * pool (`dispatch`, `close`, `destroy`); `running` and `queued` are for the dashboard and tests.
 */
export class BoundedPool extends DispatcherBase {
  readonly #pool: Dispatcher;
  /** This pool's own, or those of the pool it shares its upstream's limits with (`shareWith`, adoptSlotsOf). */
  #slots: UpstreamSlots;
  /** Requests of this pool running or waiting (close() waits for its own). */
  #own = 0;
  /** The pool a reload put in this one's place (adoptSlotsOf), if any. */
  #successor: BoundedPool | undefined = undefined;
  #closed = false;
  #drained: (() => void) | undefined = undefined;

  /** `shareWith`: another pool to the same upstream whose running requests and queue this one counts with its own. */
  constructor(pool: Dispatcher, limits: QueueLimits, shareWith?: BoundedPool) {
    super();
    this.#pool = pool;
    this.#slots = shareWith !== undefined ? shareWith.#slots : new UpstreamSlots(limits);
  }

  /** The running requests, wait queue and limits of this pool's upstream. */
  get slots(): UpstreamSlots {
    return this.#slots;
  }

  /**
   * Makes this new pool the successor of `previous`, to the same upstream (a reload changed a pool option): the two
   * count their running requests and queue together, under this pool's limits, and what waits starts at once if
   * they allow more. Each reload gave every upstream a fresh count, so after N such reloads one upstream took
   * (N+1) times `connections_per_upstream`; and a request queued before the reload waited for the old pool's slots
   * alone (503 at `queue_timeout` beside an idle new pool). Called before this pool has taken any request.
   * `takeWaiting` false: what waits on `previous` still starts there (a kind of request this pool cannot carry).
   */
  adoptSlotsOf(previous: BoundedPool, takeWaiting = true): void {
    const limits = this.#slots.limits;
    this.#slots = previous.#slots;
    this.#slots.limits = limits;
    if (takeWaiting) previous.#successor = this;
    this.#startWaiting();
  }

  /** Requests given to a pool of this upstream and not finished. */
  get running(): number {
    return this.slots.running;
  }

  /** Requests of this upstream waiting here. */
  get queued(): number {
    return this.slots.queue.length;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const request = new BoundedRequest(this, options, handler);
    handler.onRequestStart?.(request, NO_CONTEXT);
    if (request.aborted) return true;
    const slots = this.#slots;
    if (this.#closed) request.fail(POOL_CLOSED);
    else if (slots.running < slots.limits.connections) this.#start(request);
    else if (slots.queue.length >= slots.limits.queueLimit) request.fail(QUEUE_FULL);
    else {
      this.#own++;
      slots.queue.push(request);
      request.timer = setTimeout(() => request.fail(QUEUE_TIMEOUT), slots.limits.queueTimeoutMs);
      request.timer.unref();
    }
    return true;
  }

  /**
   * Called once per request when it leaves: from the queue (`wasQueued`) or from the pool (a slot frees up). The
   * next waiting request of the upstream starts, on its own pool.
   */
  finished(request: BoundedRequest, wasQueued: boolean): void {
    const slots = this.#slots;
    this.#own--;
    if (wasQueued) {
      const index = slots.queue.indexOf(request);
      if (index !== -1) slots.queue.splice(index, 1);
    } else {
      slots.running--;
      this.#startWaiting();
    }
    if (this.#drained && this.#own === 0) this.#drained();
  }

  /** Starts the upstream's waiting requests, each on its own pool, while the limit allows. */
  #startWaiting(): void {
    const slots = this.#slots;
    while (slots.running < slots.limits.connections && slots.queue.length > 0) {
      const next = slots.queue.shift()!;
      if (next.timer) clearTimeout(next.timer);
      const from = next.owner;
      from.#own--; // counted again by #start
      // One queued on a pool a reload replaced starts on the newest open one: the old pool's undici pool still has
      // the old connection count, and would queue it again behind that pool's running requests.
      let to = from;
      for (let later = from.#successor; later !== undefined; later = later.#successor) if (!later.#closed) to = later;
      next.owner = to;
      to.#start(next);
      if (to !== from && from.#drained && from.#own === 0) from.#drained();
    }
  }

  #start(request: BoundedRequest): void {
    request.state = 'running';
    this.#slots.running++;
    this.#own++;
    try {
      this.#pool.dispatch(request.options, request);
    } catch (err) {
      request.onResponseError(null, err as Error);
    }
  }

  /** Refuses new requests, lets waiting and running ones finish, then closes the pool. */
  override close(callback: () => void): void;
  override close(): Promise<void>;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const idle = !this.#slots.queue.some((r) => r.owner === this) ? Promise.resolve() : new Promise<void>((resolve) => (this.#drained = resolve));
    const done = idle.then(() => this.#pool.close());
    if (callback) {
      void done.then(callback, callback);
      return;
    }
    return done;
  }

  /** Fails every waiting request and destroys the pool (its running requests fail too). */
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null): Promise<void>;
  override destroy(): Promise<void>;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const err = typeof errOrCallback === 'function' || errOrCallback == null ? POOL_CLOSED : errOrCallback;
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    for (const request of this.#slots.queue.filter((r) => r.owner === this)) request.fail(err);
    endOpeningConnections(this.#pool); // undici's destroy leaves a connect in progress to run its course
    const done = this.#pool.destroy(err);
    if (cb) {
      void done.then(cb, cb);
      return;
    }
    return done;
  }
}
