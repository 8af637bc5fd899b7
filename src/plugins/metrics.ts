// api.metrics: prom-client metrics on the gateway's registry, named portcullis_plugin_<name> on /metrics.
import { Counter, Gauge, Histogram, type Registry } from '../observability/prom-client.js';
import type { PluginMetricOptions, PluginMetrics } from './contract.js';

type AnyMetric = Counter | Gauge | Histogram;

const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Metrics made by plugins, by full name. Lives as long as the gateway: an instance re-created by a reload asks for
 * the same metric again and gets the existing one (prom-client refuses a second registration), so counters carry on.
 */
export class PluginMetricCache {
  readonly #metrics = new Map<string, AnyMetric>();
  readonly registry: Registry | undefined;

  constructor(registry: Registry | undefined) {
    this.registry = registry;
  }

  /** The handle given to plugins; without a registry (no metrics) the metrics still work, unexported. */
  handle(): PluginMetrics {
    const registry = this.registry;
    const make = <M extends AnyMetric>(kind: new (c: never) => M, options: PluginMetricOptions & { buckets?: readonly number[] }): M => {
      if (typeof options?.name !== 'string' || !METRIC_NAME.test(options.name)) throw new TypeError('metric name must match [a-zA-Z_][a-zA-Z0-9_]*');
      const name = `portcullis_plugin_${options.name}`;
      const existing = this.#metrics.get(name);
      if (existing !== undefined) {
        if (!(existing instanceof kind)) throw new TypeError(`metric ${name} already exists with another type`);
        return existing;
      }
      const config = {
        name,
        help: String(options.help ?? name),
        labelNames: [...(options.labelNames ?? [])],
        registers: registry === undefined ? [] : [registry],
        ...(options.buckets === undefined ? {} : { buckets: [...options.buckets] }),
      };
      const metric = new kind(config as never);
      this.#metrics.set(name, metric);
      return metric;
    };
    return {
      get registry(): Registry {
        if (registry === undefined) throw new TypeError('metrics are not enabled in this gateway');
        return registry;
      },
      counter: (options) => make(Counter, options) as never,
      gauge: (options) => make(Gauge, options) as never,
      histogram: (options) => make(Histogram, options) as never,
    };
  }
}
