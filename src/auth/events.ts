// AuthEventSink: where the auth service reports what happened (metrics implement it later); a no-op by default.

/** Everything the auth service reports, one call per outcome. */
export type AuthEvent = 'register' | 'login_success' | 'login_failure' | 'refresh' | 'reuse_detected' | 'logout';

/** Receives auth outcomes. `record` is called synchronously on the request path, so it must be cheap and never throw. */
export interface AuthEventSink {
  record(event: AuthEvent): void;
}

/** The default sink: ignores every event. */
export const noopAuthEvents: AuthEventSink = {
  record(): void {},
};
