// First-party plugin: a route's request_headers / response_headers rewrites, written on the public plugin contract
// (it runs through the same chain, facade and owned-header guard as any plugin; the contract carries it whole).
import type { HeaderRewriteConfig } from '../../config/schema.js';
import type { Plugin, PluginHeaders, PluginHooks } from '../contract.js';

/** The config of one route's header rewrites. */
export interface RouteHeadersConfig {
  readonly request: HeaderRewriteConfig | undefined;
  readonly response: HeaderRewriteConfig | undefined;
}

/** `set` first, then `remove` (names are lower case: the schema normalised them). */
function apply(headers: PluginHeaders, rewrite: HeaderRewriteConfig): void {
  for (const name in rewrite.set) headers.set(name, rewrite.set[name]!);
  for (const name of rewrite.remove) headers.delete(name);
}

export const routeHeadersPlugin: Plugin<RouteHeadersConfig> = {
  name: 'route-headers',
  create(config): PluginHooks {
    const { request, response } = config;
    const hooks: PluginHooks = {};
    if (request !== undefined) hooks.onUpstreamRequest = (ctx) => apply(ctx.upstreamHeaders, request);
    if (response !== undefined) hooks.onResponse = (ctx) => apply(ctx.responseHeaders, response);
    return hooks;
  },
};

/** The hooks for a route's rewrites, or undefined when it has none (then nothing runs per request). */
export function routeHeaderHooks(request: HeaderRewriteConfig | undefined, response: HeaderRewriteConfig | undefined): PluginHooks | undefined {
  if (request === undefined && response === undefined) return undefined;
  return routeHeadersPlugin.create({ request, response }, undefined as never) as PluginHooks;
}
