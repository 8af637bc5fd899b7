// How the host knows when the requests of a plugin generation (the instances of one config) have ended, so that an
// instance a reload retired is closed only once nothing can call it any more (host.ts). Hot path: one increment when
// a request matches a route that runs plugin instances, one decrement once that request's onLog hooks have all run;
// no closure or object per request (an async last onLog gets one more promise reaction, beside the chain's own).
import type { RequestContext } from '../pipeline/context.js';
import type { Route, RouteTable } from '../pipeline/route.js';
import type { PluginInstance } from './chain.js';
import type { PluginContext, PluginHooks } from './contract.js';

/** The requests running on the routes of one generation. */
export class RequestCount {
  /** Requests that matched a counted route and whose onLog hooks have not all run yet. */
  running = 0;
  #idle: (() => void) | undefined = undefined;

  /** One request is done with the generation's instances. Bound once: a logging hook, and a promise's callback. */
  readonly leave = (): void => {
    if (--this.running === 0 && this.#idle !== undefined) this.#idle();
  };

  /** Calls `idle` when no request runs any more (at once if none does); undefined stops watching. */
  whenIdle(idle: (() => void) | undefined): void {
    this.#idle = idle;
    if (idle !== undefined && this.running === 0) idle();
  }
}

/**
 * A route table that counts the requests matching one of `counted` (the routes whose plugin phase runs instances);
 * everything else is the table's own. The pipeline reads the table once per request, at its start, so a request is
 * counted on the generation it runs on, whatever reloads come after.
 */
export class CountingTable implements RouteTable {
  readonly fallback: Route;
  readonly #table: RouteTable;
  readonly #counted: ReadonlySet<Route>;
  readonly #count: RequestCount;

  constructor(table: RouteTable, counted: ReadonlySet<Route>, count: RequestCount) {
    this.#table = table;
    this.#counted = counted;
    this.#count = count;
    this.fallback = table.fallback; // requests refused before matching run no plugin
  }

  match(ctx: RequestContext): Route {
    const route = this.#table.match(ctx);
    if (this.#counted.has(route)) this.#count.running++;
    return route;
  }
}

type RequestHook = (ctx: PluginContext) => unknown;

/**
 * `instance` as the chain should run it when its onLog is the last of the chain's: the same hooks, called with the
 * instance's own hooks object as `this`, and `done` called once its onLog has finished (returned, thrown, or its
 * promise settled). The chain runs the onLog hooks of a request one after the other, each once the one before has
 * settled or timed out, so the last one's end is the end of the request's use of every instance of the chain.
 */
export function signalLogEnd(instance: PluginInstance, done: () => void): PluginInstance {
  const hooks = instance.hooks;
  const forward: PluginHooks = {};
  for (const name of ['onRequest', 'onUpstreamRequest', 'onResponse'] as const) {
    const hook = hooks[name] as RequestHook | undefined;
    if (typeof hook === 'function') forward[name] = (ctx) => hook.call(hooks, ctx) as void;
  }
  const onLog = hooks.onLog as RequestHook;
  forward.onLog = (ctx) => {
    let result: unknown;
    try {
      result = onLog.call(hooks, ctx);
      if (!isThenable(result)) {
        done();
        return result as void;
      }
    } catch (err) {
      done();
      throw err;
    }
    // Adopted once, as the chain adopts it (a thenable's then is called once); the chain gets the same promise.
    const adopted = Promise.resolve(result);
    adopted.then(done, done);
    return adopted as Promise<void>;
  };
  return { name: instance.name, hooks: forward };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
