// RateLimitEventSink: where the limiter reports each decision (metrics implement it later); a no-op by default.

/** pass: a token was taken; reject: answered 429; store_error: the store could not decide (policy applied). */
export type RateLimitEvent = 'pass' | 'reject' | 'store_error';

/** Receives limiter outcomes. `record` is called synchronously on the request path: cheap, and never throws. */
export interface RateLimitEventSink {
  /** `route` is the route's name: bounded by the config, never request data. */
  record(event: RateLimitEvent, route: string): void;
}

/** The default sink: ignores every event. */
export const noopRateLimitEvents: RateLimitEventSink = {
  record(): void {},
};
