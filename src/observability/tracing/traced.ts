// Wraps an object (a store, the password hasher) so chosen method calls run in child spans; the object itself when
// tracing is off, so nothing is added to an untraced gateway.
import type { ChildKind, SpanAttributes, Tracing } from './types.js';

/** The span for a call of `method` with `args`, or undefined for no span (a cached answer, a lifecycle call). */
export type SpanFor = (method: string, args: readonly unknown[]) => { name: string; kind: ChildKind; attributes: SpanAttributes } | undefined;

/**
 * A Proxy whose methods run through `tracing.child` when `spanFor` names a span. Methods are called on the real
 * object (private fields keep working) and bound once per name, not per call.
 */
export function traced<T extends object>(target: T, tracing: Tracing, spanFor: SpanFor): T {
  if (!tracing.enabled) return target;
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(obj, key) {
      const value: unknown = Reflect.get(obj, key, obj);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      let wrapper = wrappers.get(key);
      if (wrapper === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = (...args: unknown[]): unknown => {
          const span = spanFor(key, args);
          if (span === undefined) return method.apply(obj, args);
          return tracing.child(span.name, span.kind, span.attributes, () => method.apply(obj, args));
        };
        wrappers.set(key, wrapper);
      }
      return wrapper;
    },
  });
}
