// How the host knows when the requests of a plugin generation (the instances of one config) have ended, so that an
// instance a reload retired is closed only once nothing can call it any more (host.ts). Hot path: one increment when
// a request matches a route that runs plugin instances, one decrement when the chain is done with it (its onLog
// hooks have run or been abandoned at plugin_timeout: chain.ts onLogsDone); no closure or object per request.
import type { RequestContext } from '../pipeline/context.js';
import type { RequestCount } from '../pipeline/request-count.js';
import type { Route, RouteTable } from '../pipeline/route.js';

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
