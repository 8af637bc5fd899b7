// api.metrics: prom-client metrics on the gateway's registry, named portcullis_plugin_<name> on /metrics.
import { Counter, Gauge, Histogram, type Registry } from '../observability/prom-client.js';
import type { PluginMetricOptions, PluginMetrics } from './contract.js';
import { pluginRegistryView } from './registry-view.js';

type AnyMetric = Counter | Gauge | Histogram;

/** A metric made for plugins, with the shape it was made with: a metric keeps it for the life of the process. */
interface MadeMetric {
  readonly metric: AnyMetric;
  /** The label names, sorted (their order does not matter to a metric), and the histogram buckets, as text. */
  readonly shape: string;
  /** What made it (a reload's preparation, see forget()), if anything in particular; cleared once another user keeps it. */
  maker: object | undefined;
  /** The instances that asked for it (their tokens), those a reload retired forgotten (retainUsers). */
  readonly users: Set<object>;
}

/** How an asked-for metric differs from the one of that name. */
export type MetricDifference = 'another type' | 'other labels or buckets';

/**
 * A plugin asked for a metric that exists with another type, other labels or other buckets. Thrown by api.metrics
 * into the plugin's create() (or hook). At a reload, it refuses the reload and the running config keeps serving;
 * before, the plugin got the old metric back, and every increment with the new labels threw, a 500 on every request.
 * `kept`: the metric was made before this config (the running gateway keeps it until a restart, which a reload's
 * refusal says); else another instance of the same config made it, which no restart changes. Its text is the
 * gateway's own (the name matched METRIC_NAME), so a create() failure shows it (plugins/load.ts).
 */
export class MetricConflictError extends TypeError {
  constructor(
    readonly metric: string,
    readonly difference: MetricDifference,
    readonly kept: boolean,
  ) {
    super(
      kept
        ? `needs a restart: metric ${metric} keeps the type, labels and buckets it was made with until the gateway restarts (MetricConflictError; or give the metric a new name)`
        : `metric ${metric} is asked for with ${difference} than another instance of this config asked with (MetricConflictError)`,
    );
    this.name = 'MetricConflictError';
  }

  /**
   * The error anew from its fields when they are what api.metrics makes (a plugin could build one of its own from a
   * caught one's constructor, with any text), else undefined.
   */
  static remade(err: unknown): MetricConflictError | undefined {
    if (!(err instanceof MetricConflictError)) return undefined;
    const { metric, difference, kept } = err;
    if (typeof metric !== 'string' || !metric.startsWith(PREFIX) || !METRIC_NAME.test(metric.slice(PREFIX.length))) return undefined;
    if (difference !== 'another type' && difference !== 'other labels or buckets') return undefined;
    if (typeof kept !== 'boolean') return undefined;
    return new MetricConflictError(metric, difference, kept);
  }
}

/** What every plugin metric's name starts with. */
const PREFIX = 'portcullis_plugin_';

function shapeOf(options: PluginMetricOptions & { buckets?: readonly number[] }): string {
  const labels = [...(options.labelNames ?? [])].map(String).sort().join(',');
  return options.buckets === undefined ? labels : `${labels}|${options.buckets.join(',')}`;
}

const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** The series a histogram writes beside its name. */
const HISTOGRAM_SERIES = ['_bucket', '_sum', '_count'] as const;

/**
 * `labelNames` is undefined or an array of label names ([a-zA-Z_][a-zA-Z0-9_]*, each once). It was spread as it
 * came: labelNames: 'outcome' (a string for an array) made a metric with the labels o, u, t, c, m and e, the
 * registration succeeded, and every inc({ outcome }) then failed, a 500 on each request far from the mistake; a
 * name prom-client refuses threw a plain Error, and a number was taken as its text.
 */
function checkLabelNames(labelNames: unknown, histogram: boolean): void {
  if (labelNames === undefined) return;
  if (!Array.isArray(labelNames)) throw new TypeError('metric labelNames must be an array of label names');
  const seen = new Set<string>();
  for (const label of labelNames) {
    if (typeof label !== 'string' || !METRIC_NAME.test(label)) throw new TypeError('metric label names must match [a-zA-Z_][a-zA-Z0-9_]*');
    // Prometheus reserves names starting with __ (__name__ would rename the series a scrape stores), and a histogram
    // writes `le` itself: prom-client took the first and threw a plain Error for the second.
    if (label.startsWith('__')) throw new TypeError(`metric label ${label}: names starting with __ are reserved by Prometheus`);
    if (histogram && label === 'le') throw new TypeError('histogram label le is written by the histogram itself');
    if (seen.has(label)) throw new TypeError(`metric label ${label} is named twice`);
    seen.add(label);
  }
}

/**
 * A histogram's `buckets` is undefined or an array of finite numbers in increasing order, each once (as the other
 * Prometheus clients demand). prom-client took them as given: [5, 1] counted an observation of 3 in le="1", [1, 1]
 * wrote the series le="1" twice (Prometheus refuses such a scrape whole), Infinity wrote le="Infinity" beside
 * le="+Inf", NaN le="NaN", and strings were compared as numbers.
 */
function checkBuckets(buckets: unknown): void {
  if (buckets === undefined) return;
  if (!Array.isArray(buckets)) throw new TypeError('histogram buckets must be an array of numbers');
  let previous = -Infinity;
  for (const bound of buckets) {
    if (typeof bound !== 'number' || !Number.isFinite(bound)) throw new TypeError('histogram buckets must be finite numbers');
    if (!(bound > previous)) throw new TypeError('histogram buckets must be in increasing order, each once');
    previous = bound;
  }
}

/** A TypeError for a NaN step (prom-client's own check, `value && !isFinite(value)`, lets NaN through). */
function checkStep(value: unknown): void {
  if (typeof value === 'number' && Number.isNaN(value)) throw new TypeError('metric value must be a number, not NaN');
}

/**
 * Makes inc() and dec() of a counter or gauge, and of the children labels() returns, throw a TypeError for NaN: a
 * counter given inc(NaN) (a parseInt of a missing header) read NaN on /metrics for the rest of the process, its
 * count lost, and the plugin saw no error. set(NaN) on a gauge stays allowed (NaN is a gauge value Prometheus
 * knows); a histogram's observe() refuses NaN itself.
 */
function refuseNaNSteps(metric: AnyMetric): void {
  if (metric instanceof Histogram) return;
  const guard = (target: Record<string, unknown>, withLabels: boolean): void => {
    for (const method of ['inc', 'dec']) {
      const original = target[method];
      if (typeof original !== 'function') continue;
      target[method] = function (this: unknown, ...args: unknown[]): unknown {
        checkStep(withLabels && typeof args[0] === 'object' && args[0] !== null ? args[1] : args[0]);
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      };
    }
  };
  const m = metric as unknown as Record<string, unknown>;
  guard(m, true);
  const labels = m.labels as (...args: unknown[]) => Record<string, unknown>;
  m.labels = function (this: unknown, ...args: unknown[]): Record<string, unknown> {
    const child = labels.apply(this, args);
    guard(child, false);
    return child;
  };
}

/**
 * Metrics made by plugins, by full name. Lives as long as the gateway: an instance re-created by a reload asks for
 * the same metric again and gets the existing one (prom-client refuses a second registration), so counters carry on.
 * Instances asking for one name share its metric; asking with another type, other labels or other buckets throws
 * MetricConflictError.
 */
export class PluginMetricCache {
  readonly #metrics = new Map<string, MadeMetric>();
  readonly registry: Registry | undefined;
  /** The registry as plugins see it (registry-view.ts), and the names they registered through it. */
  readonly #view: Registry | undefined;

  constructor(registry: Registry | undefined) {
    this.registry = registry;
    this.#view = registry === undefined ? undefined : pluginRegistryView(registry, new Set());
  }

  /**
   * The handle given to plugins; without a registry (no metrics) the metrics still work, unexported. The metrics it
   * creates are recorded as made by `maker`, for forget(), and as asked for by `user` (one instance's token).
   * `inUse`: whether a user is an instance the config being prepared keeps; a metric asked for otherwise by an
   * instance of that config, or made by its own preparation, is a conflict within the config; any other is one
   * with a metric only the running gateway still has, which a restart frees (MetricConflictError.kept).
   */
  handle(maker?: object, user?: object, inUse: (user: object) => boolean = () => false): PluginMetrics {
    const registry = this.registry;
    const view = this.#view;
    const make = <M extends AnyMetric>(kind: new (c: never) => M, options: PluginMetricOptions & { buckets?: readonly number[] }): M => {
      if (typeof options?.name !== 'string' || !METRIC_NAME.test(options.name)) throw new TypeError('metric name must match [a-zA-Z_][a-zA-Z0-9_]*');
      checkLabelNames(options.labelNames, kind === (Histogram as unknown));
      checkBuckets(options.buckets);
      const name = `${PREFIX}${options.name}`;
      this.#refuseSeriesClash(name, kind === (Histogram as unknown));
      const shape = shapeOf(options);
      const existing = this.#metrics.get(name);
      if (existing !== undefined) {
        // Made by an earlier config's instances, none of which this config keeps: only a restart frees it.
        const kept = existing.maker !== maker && ![...existing.users].some(inUse);
        if (!(existing.metric instanceof kind)) throw new MetricConflictError(name, 'another type', kept);
        if (existing.shape !== shape) throw new MetricConflictError(name, 'other labels or buckets', kept);
        if (user !== undefined) existing.users.add(user);
        return existing.metric as M;
      }
      const config = {
        name,
        help: String(options.help ?? name),
        labelNames: [...(options.labelNames ?? [])],
        registers: registry === undefined ? [] : [registry],
        ...(options.buckets === undefined ? {} : { buckets: [...options.buckets] }),
      };
      const metric = new kind(config as never);
      // prom-client keeps the registries it registered with on the metric, where a plugin can reach them: the view's,
      // not the gateway's own (prom-client reads the list only while it constructs).
      (metric as unknown as { registers: Registry[] }).registers = view === undefined ? [] : [view];
      refuseNaNSteps(metric);
      this.#metrics.set(name, { metric, shape, maker, users: new Set(user === undefined ? [] : [user]) });
      return metric;
    };
    return {
      get registry(): Registry {
        if (view === undefined) throw new TypeError('metrics are not enabled in this gateway');
        return view;
      },
      counter: (options) => make(Counter, options) as never,
      gauge: (options) => make(Gauge, options) as never,
      histogram: (options) => make(Histogram, options) as never,
    };
  }

  /**
   * A histogram writes three series of its own, `<name>_bucket`, `_sum` and `_count`: another metric of that name beside
   * it wrote the same series twice (one value lost at ingestion). Refused either way round; a name asked for again
   * is the existing metric's own (handle's make), never a clash.
   */
  #refuseSeriesClash(name: string, histogram: boolean): void {
    if (this.#metrics.has(name)) return;
    const clash = (other: string, histogramName: string): never => {
      throw new TypeError(`metric ${name} clashes with ${other}: the series ${histogramName}_bucket, _sum and _count are histogram ${histogramName}'s`);
    };
    for (const suffix of HISTOGRAM_SERIES) {
      if (histogram && this.#metrics.has(name + suffix)) clash(name + suffix, name);
      if (name.endsWith(suffix)) {
        const base = name.slice(0, -suffix.length);
        if (this.#metrics.get(base)?.metric instanceof Histogram) clash(base, base);
      }
    }
  }

  /** Forgets every user that is not `live` (the running instances), so that what each metric records stays bounded. */
  retainUsers(live: ReadonlySet<object>): void {
    for (const made of this.#metrics.values()) for (const user of made.users) if (!live.has(user)) made.users.delete(user);
  }

  /**
   * Removes the metrics `maker` created (from /metrics too): a reload that failed after a new instance's create()
   * registered one changes nothing, as the README promises, and a later reload may ask for that name anew. One that
   * a `running` instance asked for meanwhile (a hook's get-or-create while the reload was prepared, or held by a
   * cluster worker) stays, as that instance's: removed, it would vanish from /metrics while the instance counts on.
   */
  forget(maker: object, running: ReadonlySet<object>): void {
    for (const [name, made] of this.#metrics) {
      if (made.maker !== maker) continue;
      if ([...made.users].some((user) => running.has(user))) {
        made.maker = undefined;
        continue;
      }
      this.registry?.removeSingleMetric(name);
      this.#metrics.delete(name);
    }
  }
}
