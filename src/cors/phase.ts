// CORS as a phase, first in every route's request filters: preflights are answered by the gateway (also for the
// auth API, so a browser app can log in), and every response to an allowed origin carries the CORS headers, the
// gateway's own 401, 404 and 429 included. A disallowed origin gets no CORS headers at all.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';
import type { Outcome, Phase } from '../pipeline/phase.js';
import { sendEmpty } from '../pipeline/reply.js';
import { ContextSlot } from '../pipeline/slot.js';
import { isPreflight, originAllowed, preflightHeaders, responseCorsHeaders, type CorsPolicy } from './policy.js';

/** Set on a preflight the gateway answered: its headers are complete, the response hook leaves them alone. */
const ANSWERED_PREFLIGHT = new ContextSlot<boolean>('cors_preflight');

/**
 * Set by the route table on a preflight whose route (found by the method it asks about) has no CORS policy
 * (`cors: off`, or no route at all): it is then routed as the plain OPTIONS it is, and no CORS phase may answer it,
 * not even that of the route or the 404 it lands on. Before, such a route's preflight was approved by the global
 * policy, so the browser sent the real cross-origin request without the upstream ever judging the preflight.
 */
const DECLINED_PREFLIGHT = new ContextSlot<boolean>('cors_preflight_declined');

/** The route table's mark for a preflight no CORS policy answers (see DECLINED_PREFLIGHT). */
export function declinePreflight(ctx: RequestContext): void {
  DECLINED_PREFLIGHT.set(ctx, true);
}

/**
 * Set by the route table on a preflight whose URL another method takes to a route with another CORS policy (or
 * none): the answer then says `Access-Control-Max-Age: 0`. A browser caches a preflight answer per URL, for every
 * method it lists and every header it allows, and then sends those requests without a preflight; the gateway routes
 * by method, so a GET route's answer (listing DELETE) let the DELETE of a `cors: off` route, whose upstream was
 * meant to judge its preflight, or of a route with a stricter policy, go out unasked for 600 s. Any method counts,
 * not only those the answer lists: the standard's cache (Firefox's) merges the answers of one URL, so one route's
 * method went out with headers only another route's policy allowed (route-table.ts, #cacheable).
 */
const UNCACHEABLE_PREFLIGHT = new ContextSlot<boolean>('cors_preflight_uncacheable');

/** The route table's mark for a preflight whose answer must not be cached (see UNCACHEABLE_PREFLIGHT). */
export function uncacheablePreflight(ctx: RequestContext): void {
  UNCACHEABLE_PREFLIGHT.set(ctx, true);
}

export function createCorsPhase(policy: CorsPolicy): Phase {
  return {
    name: 'cors',
    onRequest(ctx: RequestContext): Outcome {
      const h = ctx.req.headers;
      if (!isPreflight(ctx.req.method, h.origin, h['access-control-request-method'])) return 'continue';
      if (DECLINED_PREFLIGHT.get(ctx) === true) return 'continue';
      const origin = h.origin as string;
      const headers: Record<string, string> = { vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' };
      if (originAllowed(policy, origin)) {
        Object.assign(headers, preflightHeaders(policy, origin));
        if (UNCACHEABLE_PREFLIGHT.get(ctx) === true) headers['access-control-max-age'] = '0';
      }
      ANSWERED_PREFLIGHT.set(ctx, true);
      return sendEmpty(ctx, 204, headers);
    },
    onResponse(ctx: RequestContext, headers: OutgoingHttpHeaders): void {
      if (ANSWERED_PREFLIGHT.get(ctx) === true) return;
      if (DECLINED_PREFLIGHT.get(ctx) === true) {
        // A preflight no policy answers (a `cors: off` route's), sent on as the OPTIONS it is, that landed here: this
        // route's upstream is not the one meant to judge it, and this policy is the only one here, so the answer
        // carries no CORS headers at all, neither the upstream's (a framework reflecting any Origin would approve
        // another route's methods for every origin, and the browser would cache that for the URL) nor this policy's
        // (which approved the origin for no method). The `cors: off` route takes OPTIONS itself to let its upstream answer.
        for (const name in headers) if (name.startsWith('access-control-')) delete headers[name];
        addVary(headers, 'Origin');
        return;
      }
      // The policy here is the only one: an upstream's own access-control-* headers (a framework reflecting any
      // Origin, say) would otherwise let a disallowed origin read the response.
      for (const name in headers) if (name.startsWith('access-control-')) delete headers[name];
      // Vary even when no Origin came: the response differs with one, and a shared cache must not serve this copy
      // (without CORS headers) to a browser's cross-origin request.
      addVary(headers, 'Origin');
      const origin = ctx.req.headers.origin;
      if (typeof origin !== 'string' || !originAllowed(policy, origin)) return;
      Object.assign(headers, responseCorsHeaders(policy, origin));
    },
  };
}

/**
 * The CORS policy's Vary tokens again, as the last response hook of a route that has both a policy and header
 * rewrites or plugins: those run after the CORS phase, and a route's `response_headers: { remove: [vary] }` (or a
 * `set` of it) dropped `Origin`, so a shared cache served one origin's CORS answer to every origin.
 */
export function createCorsVaryPhase(): Phase {
  return {
    name: 'cors-vary',
    onResponse(ctx: RequestContext, headers: OutgoingHttpHeaders): void {
      addVary(headers, 'Origin');
      if (ANSWERED_PREFLIGHT.get(ctx) === true) {
        addVary(headers, 'Access-Control-Request-Method');
        addVary(headers, 'Access-Control-Request-Headers');
      }
    },
  };
}

/**
 * Adds a token to Vary without dropping what the upstream sent. Split on commas and trimmed token by token: a regex
 * split around `\s*,\s*` takes quadratic time on a long run of spaces, and the upstream writes this value.
 */
function addVary(headers: OutgoingHttpHeaders, token: string): void {
  const current = headers.vary;
  if (current === undefined) {
    headers.vary = token;
    return;
  }
  const value = Array.isArray(current) ? current.join(',') : String(current);
  const wanted = token.toLowerCase();
  for (const listed of value.split(',')) if (listed.trim().toLowerCase() === wanted) return;
  headers.vary = `${value}, ${token}`;
}
