// The adapter from plugin instances to the engine's Phase: runs their hooks in order, bounded in time, failures
// turned into the catalogue's replies. One chain per route (its routes[].plugins, else middleware.plugins).
import type { OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { TRACE } from '../observability/tracing/types.js';
import type { RequestContext } from '../pipeline/context.js';
import { ContextSlot } from '../pipeline/slot.js';
import type { Outcome, Phase, UpstreamHeaders } from '../pipeline/phase.js';
import { sendBody } from '../pipeline/reply.js';
import type { PluginHooks, PluginRequest } from './contract.js';
import { PluginFacade, snapshotRequest, type FacadeScope, type HookStage } from './facade.js';
import { isThenable, PluginError } from './plugin-error.js';

/** A created plugin instance, as the chain runs it. */
export interface PluginInstance {
  /** The instance name from the config (`plugins[].name`). */
  readonly name: string;
  readonly hooks: PluginHooks;
}

export interface PluginChainOptions {
  readonly instances: readonly PluginInstance[];
  /** middleware.plugin_timeout in ms. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly scope: FacadeScope;
  /**
   * Called once per request when the chain is done with it: its onLog hooks have all run (each returned, failed, or
   * was abandoned at `timeoutMs`), or, for a chain without onLog hooks, when the request is logged. Nothing of the
   * chain's instances is called for that request after it (a hook abandoned earlier may still run on its own).
   */
  readonly onLogsDone?: () => void;
  /**
   * How many of `instances`, from the first, are the gateway's own (a route's header rewrites): their onResponse
   * hooks also run on the error reply that follows a failed response hook, which skips the plugins' own hooks.
   * Default 0.
   */
  readonly firstParty?: number;
}

type HookName = 'onRequest' | 'onUpstreamRequest' | 'onResponse' | 'onLog';

/** What the plugins of one request share. */
interface RequestState {
  /** The chain that made it (a request runs one route's chain; this guards the slot being shared by all). */
  readonly chain: PluginChain;
  readonly facades: Array<PluginFacade | undefined>;
  request: PluginRequest | undefined;
  /** A response hook failed: the error reply that follows skips the response hooks (no loop). */
  responseFailed: boolean;
}

/**
 * The plugins' per-request state, on the context like every feature's. One slot for every chain: a request runs
 * only its route's chain. (A WeakMap keyed by the context cost more than the hooks: measured with
 * `npm run bench -- --profile plugins`, three no-op plugins added ~27 µs of garbage collection per request, since
 * every short-lived key in a WeakMap is an ephemeron the collector must trace specially.)
 */
const PLUGIN_STATE = new ContextSlot<RequestState>('plugins');

const STAGE: Readonly<Record<HookName, HookStage>> = { onRequest: 'request', onUpstreamRequest: 'upstream', onResponse: 'response', onLog: 'log' };
const TIMED_OUT = Symbol('timed out');

/**
 * Builds the Phase for an ordered list of instances. Only the hooks some instance has are present on the phase, so
 * the driver (which resolves hooks once) pays nothing per request for a hook no plugin implements.
 */
export function createPluginChain(options: PluginChainOptions): Phase {
  return new PluginChain(options).phase();
}

class PluginChain {
  readonly #instances: readonly PluginInstance[];
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #scope: FacadeScope;
  readonly #with: Readonly<Record<HookName, readonly number[]>>;
  readonly #logsDone: (() => void) | undefined;
  /** The onResponse indexes of the first-party instances (options.firstParty). */
  readonly #firstPartyResponse: readonly number[];

  constructor(options: PluginChainOptions) {
    this.#instances = options.instances;
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
    this.#scope = options.scope;
    this.#logsDone = options.onLogsDone;
    const indexes = (hook: HookName) =>
      this.#instances.flatMap((instance, i) => (typeof instance.hooks[hook] === 'function' ? [i] : []));
    this.#with = { onRequest: indexes('onRequest'), onUpstreamRequest: indexes('onUpstreamRequest'), onResponse: indexes('onResponse'), onLog: indexes('onLog') };
    const firstParty = options.firstParty ?? 0;
    this.#firstPartyResponse = this.#with.onResponse.filter((i) => i < firstParty);
  }

  phase(): Phase {
    const phase: Phase = { name: 'plugins' };
    const w = this.#with;
    if (w.onRequest.length > 0) phase.onRequest = (ctx) => this.#request(ctx, 0);
    if (w.onUpstreamRequest.length > 0) phase.onUpstreamRequest = (ctx, headers) => this.#upstream(ctx, headers, 0);
    if (w.onResponse.length > 0) {
      phase.onResponse = (ctx, headers) => {
        const state = PLUGIN_STATE.get(ctx);
        // The error reply of a failed response hook skips the plugins' hooks (no loop), but not the route's own
        // header rewrites: its response_headers are on every answer of the route, this 500 included (README).
        const failed = state !== undefined && state.chain === this && state.responseFailed;
        return this.#response(ctx, headers, 0, failed ? this.#firstPartyResponse : w.onResponse);
      };
    }
    if (w.onLog.length > 0) phase.onLogging = (ctx) => this.#log(ctx, 0);
    else if (this.#logsDone !== undefined) phase.onLogging = this.#logsDone;
    return phase;
  }

  /**
   * onRequest hooks from position `from`: 'responded' when one called respond(); a failure throws a GatewayError.
   * After a hook that waited, the next runs only if the request is not over: a client that left meanwhile had its
   * request logged (499) and every onLog run, and an instance a reload retired may have been closed since (the
   * drain counts requests until their onLog). The same holds between the upstream and the response hooks.
   */
  #request(ctx: RequestContext, from: number): Outcome | Promise<Outcome> {
    const list = this.#with.onRequest;
    for (let i = from; i < list.length; i++) {
      const facade = this.#facade(ctx, list[i]!);
      const pending = this.#invoke(ctx, list[i]!, 'onRequest', facade);
      if (pending !== undefined) {
        return pending.then((result) => {
          if (result === TIMED_OUT) throw this.#timedOut(ctx, list[i]!, 'onRequest');
          if (ctx.logged) return 'responded'; // the client left meanwhile (above)
          return PluginFacade.pendingOf(facade) !== undefined ? this.#send(ctx, facade) : this.#request(ctx, i + 1);
        });
      }
      if (PluginFacade.pendingOf(facade) !== undefined) return this.#send(ctx, facade);
    }
    return 'continue';
  }

  #upstream(ctx: RequestContext, headers: UpstreamHeaders, from: number): Outcome | Promise<Outcome> {
    const list = this.#with.onUpstreamRequest;
    for (let i = from; i < list.length; i++) {
      const facade = this.#facade(ctx, list[i]!);
      PluginFacade.bindHeaders(facade, headers, undefined);
      const pending = this.#invoke(ctx, list[i]!, 'onUpstreamRequest', facade);
      if (pending !== undefined) {
        return pending.then((result) => {
          PluginFacade.bindHeaders(facade, undefined, undefined);
          if (result === TIMED_OUT) throw this.#timedOut(ctx, list[i]!, 'onUpstreamRequest');
          if (ctx.logged) return 'responded'; // the client left meanwhile
          return PluginFacade.pendingOf(facade) !== undefined ? this.#send(ctx, facade) : this.#upstream(ctx, headers, i + 1);
        });
      }
      PluginFacade.bindHeaders(facade, undefined, undefined);
      if (PluginFacade.pendingOf(facade) !== undefined) return this.#send(ctx, facade);
    }
    return 'continue';
  }

  /** onResponse hooks: a failure marks the request and throws (the caller answers 500); a timeout is only logged. */
  #response(ctx: RequestContext, headers: OutgoingHttpHeaders, from: number, list: readonly number[]): void | Promise<void> {
    for (let i = from; i < list.length; i++) {
      const facade = this.#facade(ctx, list[i]!);
      PluginFacade.bindHeaders(facade, undefined, headers);
      let pending: Promise<unknown> | undefined;
      try {
        pending = this.#invoke(ctx, list[i]!, 'onResponse', facade);
      } catch (err) {
        this.#state(ctx).responseFailed = true;
        throw err;
      } finally {
        if (pending === undefined) PluginFacade.bindHeaders(facade, undefined, undefined);
      }
      if (pending !== undefined) {
        return pending.then(
          (result) => {
            // Skipped (README): what it changed before it was abandoned is put back, for the hooks after it too.
            if (result === TIMED_OUT) PluginFacade.undoResponseEdits(facade);
            PluginFacade.bindHeaders(facade, undefined, undefined);
            if (result === TIMED_OUT) this.#timedOut(ctx, list[i]!, 'onResponse');
            if (ctx.logged) return undefined; // the client left meanwhile
            return this.#response(ctx, headers, i + 1, list);
          },
          (err: unknown) => {
            PluginFacade.bindHeaders(facade, undefined, undefined);
            this.#state(ctx).responseFailed = true;
            throw err;
          },
        );
      }
    }
    return undefined;
  }

  /** onLog hooks, in order; nothing waits for them and nothing they do reaches the client. */
  #log(ctx: RequestContext, from: number): void {
    const list = this.#with.onLog;
    for (let i = from; i < list.length; i++) {
      const facade = this.#facade(ctx, list[i]!);
      let pending: Promise<unknown> | undefined;
      try {
        pending = this.#invoke(ctx, list[i]!, 'onLog', facade);
      } catch {
        continue; // already logged by #invoke
      }
      if (pending !== undefined) {
        pending.then(
          (result) => {
            if (result === TIMED_OUT) this.#timedOut(ctx, list[i]!, 'onLog');
            this.#log(ctx, i + 1);
          },
          () => this.#log(ctx, i + 1),
        );
        return;
      }
    }
    this.#logsDone?.();
  }

  /**
   * Runs one hook. Returns undefined when it finished synchronously (returned anything but a thenable: no promise is
   * made); otherwise a promise of its end or TIMED_OUT (then the hook is abandoned: its late calls throw). A thenable
   * is adopted once, as `Promise.resolve` adopts it, so its first settlement alone counts and a `then` that throws
   * (or a `then` getter that does) is the hook's failure like any other. A throw or rejection is logged with the
   * plugin's name and the error's class, and becomes GatewayError PLUGIN_FAILED.
   */
  #invoke(ctx: RequestContext, index: number, hook: HookName, facade: PluginFacade): Promise<unknown> | undefined {
    const instance = this.#instances[index]!;
    PluginFacade.setStage(facade, STAGE[hook]);
    let adopted: Promise<unknown>;
    try {
      const result: unknown = (instance.hooks[hook] as (c: PluginFacade) => unknown).call(instance.hooks, facade);
      if (result === undefined || !isThenable(result)) {
        PluginFacade.setStage(facade, 'idle');
        return undefined;
      }
      adopted = Promise.resolve(result);
    } catch (err) {
      PluginFacade.setStage(facade, 'idle');
      throw this.#failed(ctx, instance, hook, err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        PluginFacade.abandon(facade);
        PluginFacade.setStage(facade, 'idle');
        resolve(TIMED_OUT);
      }, this.#timeoutMs);
      // Unref'd, unlike the host's lifecycle bounds: a request hook runs while the gateway serves, whose listener (and
      // the client's socket) keeps the process alive until the bound; no stop or command awaits it, and an abandoned
      // onLog must not hold a stopped process for plugin_timeout.
      timer.unref();
      adopted.then(
        () => {
          clearTimeout(timer);
          PluginFacade.setStage(facade, 'idle');
          resolve(undefined);
        },
        (err: unknown) => {
          clearTimeout(timer);
          PluginFacade.setStage(facade, 'idle');
          // After a timeout the request has moved on; the late failure is still worth a line.
          const error = this.#failed(ctx, instance, hook, err);
          if (!PluginFacade.isAbandoned(facade)) reject(error);
        },
      );
    });
  }

  /**
   * A hook's failure: the `Plugin Failed` line (plugin, hook, the thrown value's class; never its message or code;
   * request_id, and trace_id while tracing is on, as every line of a request has: pino leaves out an undefined one),
   * and the GatewayError to answer with, whose cause is a PluginError holding only the same three facts (the access
   * log describes it as "PluginError <- <class>").
   */
  #failed(ctx: RequestContext, instance: PluginInstance, hook: HookName, err: unknown): GatewayError {
    const cause = new PluginError(instance.name, hook, err);
    this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, plugin: instance.name, hook, error: cause.errorClass }, EVENTS.pluginFailed);
    return new GatewayError('PLUGIN_FAILED', { cause });
  }

  #timedOut(ctx: RequestContext, index: number, hook: HookName): GatewayError {
    const plugin = this.#instances[index]!.name;
    this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, plugin, hook, timeout_ms: this.#timeoutMs }, EVENTS.pluginTimedOut);
    return new GatewayError('PLUGIN_TIMEOUT');
  }

  #send(ctx: RequestContext, facade: PluginFacade): 'responded' {
    const response = PluginFacade.pendingOf(facade)!;
    return sendBody(ctx, response.status, response.contentType, response.payload, response.headers);
  }

  #state(ctx: RequestContext): RequestState {
    let state = PLUGIN_STATE.get(ctx);
    if (state === undefined || state.chain !== this) {
      state = { chain: this, facades: [], request: undefined, responseFailed: false };
      PLUGIN_STATE.set(ctx, state);
    }
    return state;
  }

  #facade(ctx: RequestContext, index: number): PluginFacade {
    const state = this.#state(ctx);
    let facade = state.facades[index];
    if (facade === undefined) {
      facade = new PluginFacade(ctx, this.#scope, () => (state.request ??= snapshotRequest(ctx)));
      state.facades[index] = facade;
    } else if (PluginFacade.isAbandoned(facade)) {
      // An abandoned hook may still run (a timeout does not stop it): the next hook gets a facade of its own.
      facade = PluginFacade.successorOf(facade);
      state.facades[index] = facade;
    }
    return facade;
  }
}
