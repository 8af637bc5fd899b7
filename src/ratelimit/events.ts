// RateLimitEventSink: where the limiter reports each decision (metrics implement it later); a no-op by default.
import type { RouteClass } from '../pipeline/route.js';

/** pass: a token was taken; reject: answered 429; store_error: the store could not decide (policy applied). */
export type RateLimitEvent = 'pass' | 'reject' | 'store_error';

/** Receives limiter outcomes. `record` is called synchronously on the request path: cheap, and never throws. */
export interface RateLimitEventSink {
  record(event: RateLimitEvent, routeClass: RouteClass): void;
}

/** The default sink: ignores every event. */
export const noopRateLimitEvents: RateLimitEventSink = {
  record(): void {},
};
