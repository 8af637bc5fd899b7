// Which calls get child spans: every store call, token verification when not cached, password hashing. Used by the
// composition root (features.ts); with tracing off every function here returns its argument unchanged.
import type { AuthInstrument } from '../../auth/setup.js';
import { traced } from './traced.js';
import type { Tracing } from './types.js';

// The stable database attribute names, spelled out: importing @opentelemetry/semantic-conventions here would load it
// into every gateway, traced or not.
const ATTR_DB_SYSTEM_NAME = 'db.system.name';
const ATTR_DB_OPERATION_NAME = 'db.operation.name';

/** Calls that are lifecycle, not work done for a request. */
const LIFECYCLE = new Set(['close', 'migrate']);

/**
 * A store whose every call made during a request is a client span `<store>.<method>` with the OpenTelemetry
 * database attributes (`db.system.name` is "sqlite", "postgresql", "redis", or "memory" for the in-process store).
 * Calls outside a request (janitor, readiness pings) make no span: they have no request to belong to.
 */
export function traceStore<T extends object>(store: T, tracing: Tracing, storeName: string, system: string): T {
  return traced(store, tracing, (method) =>
    LIFECYCLE.has(method)
      ? undefined
      : { name: `${storeName}.${method}`, kind: 'client', attributes: { [ATTR_DB_SYSTEM_NAME]: system, [ATTR_DB_OPERATION_NAME]: method } },
  );
}

/** Token verification (only when the token is not already in the verified cache) and argon2 work as spans. */
export function traceAuth(tracing: Tracing): AuthInstrument | undefined {
  if (!tracing.enabled) return undefined;
  return {
    tokens: (tokens) =>
      traced(tokens, tracing, (method, args) =>
        method === 'verify' && tokens.verifiedClaims(args[0] as string) === undefined
          ? { name: 'auth.verify_token', kind: 'internal', attributes: {} }
          : undefined,
      ),
    passwords: (passwords) =>
      traced(passwords, tracing, (method) =>
        method === 'hash'
          ? { name: 'auth.hash_password', kind: 'internal', attributes: {} }
          : method === 'verify' || method === 'verifyDummy'
            ? { name: 'auth.verify_password', kind: 'internal', attributes: {} }
            : undefined,
      ),
  };
}
