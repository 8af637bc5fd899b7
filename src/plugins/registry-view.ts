// api.metrics.registry: the gateway's prom-client registry as a plugin may use it. A plugin registers and reads
// metrics of its own there (the admin /metrics serves them beside the gateway's), but what acts on the whole registry
// acts on the gateway's metrics too: registry.clear() in a plugin's close() (a plausible "unregister my metrics")
// took every portcullis_ series off /metrics until a restart, and resetMetrics() zeroed the gateway's counters. Here
// those reach only the metrics registered through this view, and the settings of the whole registry are refused.
import type { Registry } from '../observability/prom-client.js';

/** Registry members that change the whole registry's output: refused (TypeError), never the plugin's to set. */
const REFUSED = new Set<PropertyKey>(['setDefaultLabels', 'setContentType']);

/**
 * A view of `registry` whose removals reach only the metrics registered through a view of it (`registered`, shared
 * by every plugin instance, so a re-created instance may remove what its predecessor registered); everything else
 * (registerMetric, getSingleMetric, metrics, …) is the registry's own.
 */
export function pluginRegistryView(registry: Registry, registered: Set<string>): Registry {
  const own = (name: string): boolean => registered.has(name);
  const overrides: Record<PropertyKey, unknown> = {
    registerMetric(metric: { name: string }): void {
      registry.registerMetric(metric as never);
      registered.add(metric.name);
    },
    removeSingleMetric(name: string): void {
      if (!own(name)) throw new TypeError(`registry.removeSingleMetric: ${String(name)} is not a metric a plugin registered`);
      registry.removeSingleMetric(name);
      registered.delete(name);
    },
    clear(): void {
      for (const name of [...registered]) {
        registry.removeSingleMetric(name);
        registered.delete(name);
      }
    },
    resetMetrics(): void {
      for (const name of registered) registry.getSingleMetric(name)?.reset();
    },
  };
  const unchangeable = (): never => {
    throw new TypeError('api.metrics.registry cannot be changed');
  };
  return new Proxy(registry, {
    get(target, key, receiver) {
      if (REFUSED.has(key)) {
        return () => {
          throw new TypeError(`registry.${String(key)} would change the gateway's own metrics: not available to plugins`);
        };
      }
      if (Object.hasOwn(overrides, key)) return overrides[key];
      // prom-client's internals (_metrics, _defaultLabels, _collectors) are the whole registry's: not through the view
      // (a prototype method called on the view then finds none and throws).
      if (typeof key === 'string' && key.startsWith('_')) return undefined;
      const value: unknown = Reflect.get(target, key, receiver);
      // The constructor as it is (Registry.merge and instanceof checks read it); the methods bound to the registry.
      return typeof value === 'function' && key !== 'constructor' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
    set: unchangeable,
    deleteProperty: unchangeable,
    defineProperty: unchangeable,
    setPrototypeOf: unchangeable,
  });
}
