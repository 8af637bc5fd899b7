// A route's rewrites as a phase: the upstream path, Host, X-Forwarded-Prefix and request headers (per attempt),
// and the response headers (on every response of the route, the gateway's own errors included).
import type { OutgoingHttpHeaders } from 'node:http';
import type { HeaderRewriteConfig } from '../config/schema.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Phase, UpstreamHeaders } from '../pipeline/phase.js';
import { rewritePath, type HostMode, type PathRewrite } from './rewrite.js';

export interface RewriteSettings {
  readonly path: PathRewrite;
  readonly host: HostMode;
  readonly requestHeaders: HeaderRewriteConfig | undefined;
  readonly responseHeaders: HeaderRewriteConfig | undefined;
}

function hasRewrite(s: RewriteSettings): boolean {
  return (
    s.path.stripPrefix !== undefined ||
    s.path.addPrefix !== undefined ||
    s.host.kind !== 'preserve' ||
    s.requestHeaders !== undefined ||
    s.responseHeaders !== undefined
  );
}

/** The phase, or undefined when the route rewrites nothing (so it costs nothing per request). */
export function createRewritePhase(settings: RewriteSettings): Phase | undefined {
  if (!hasRewrite(settings)) return undefined;
  const { path, host, requestHeaders, responseHeaders } = settings;
  const rewritesPath = path.stripPrefix !== undefined || path.addPrefix !== undefined;
  const phase: Phase = {
    name: 'rewrite',
    onUpstreamRequest(ctx: RequestContext, headers: UpstreamHeaders): void {
      if (rewritesPath) ctx.upstreamPath = rewritePath(ctx.path, path) + ctx.query;
      // Under path_prefix "/" nothing is stripped, so no prefix is announced: "/" replaced a trusted proxy's own.
      if (path.stripPrefix !== undefined && path.stripPrefix !== '/') headers['x-forwarded-prefix'] = path.stripPrefix;
      if (host.kind === 'upstream' && ctx.peer !== undefined) headers.host = ctx.peer.label;
      else if (host.kind === 'literal') headers.host = host.value;
      if (requestHeaders !== undefined) applyHeaders(headers, requestHeaders);
    },
  };
  if (responseHeaders !== undefined) {
    phase.onResponse = (_ctx: RequestContext, headers: OutgoingHttpHeaders): void => applyHeaders(headers, responseHeaders);
  }
  return phase;
}

/** `set` first, then `remove`; names are lower case (the config normalised them). */
function applyHeaders(headers: Record<string, unknown>, rewrite: HeaderRewriteConfig): void {
  for (const name in rewrite.set) headers[name] = rewrite.set[name];
  for (const name of rewrite.remove) delete headers[name];
}
