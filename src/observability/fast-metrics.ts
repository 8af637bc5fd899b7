// Pre-aggregated counter and histogram that a prom-client Registry exposes, for series updated on every request.
import type { Registry, RegistryContentType } from 'prom-client';

/**
 * prom-client's Counter/Histogram hash and validate a label object on every update, and `labels()` allocates an object
 * and a bound function per call. These collectors keep one mutable series object per label set instead: the hot path
 * looks a series up by a cheap caller-chosen key (a small integer or an interned string) and bumps plain numbers.
 * Their `get()` returns exactly what prom-client's own Counter/Histogram return, so the Registry renders the same
 * text (names, label order, series order, bucket bounds, `le="+Inf"`, `_sum`, `_count`).
 */

/** A caller-chosen identity of one label set: cheap to build and to hash (no allocation per request). */
export type SeriesKey = number | string;

/** One sample as prom-client's Registry reads it. */
export interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
  /** Labels appended after `labels` in the text (prom-client's histograms put the series labels here, after `le`). */
  sharedLabels?: Record<string, string>;
}

/** What `get()` returns: the shape prom-client's Registry renders for /metrics and for `getMetricsAsJSON()`. */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

/** Name, help text and label names, as for prom-client's constructors. */
export interface FastMetricConfig {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One counter series; keep the handle and call `inc()` on it. */
export class CounterSeries {
  /** The running total. */
  value = 0;
  /** @param labels label name to value, in the metric's label-name order (shared, never copied per request). */
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  /** Adds `by` (default 1); negative or non-finite amounts are ignored, as a counter never goes down. */
  inc(by = 1): void {
    if (by >= 0 && by !== Infinity) this.value += by;
  }
}

/** One histogram series: per-bucket counts (not cumulative until exported), sum and count. */
export class HistogramSeries {
  sum = 0;
  count = 0;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; values above the last bound only reach sum and count. */
  readonly counts: number[];

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  /** Records one value (seconds, say); non-finite values are ignored rather than thrown on the request path. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    const n = bounds.length;
    let i = 0;
    while (i < n && value > (bounds[i] as number)) i++;
    if (i < n) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** The parts shared by both collectors: config checks, the two lookup maps, registration order of series. */
abstract class FastMetric<S extends CounterSeries | HistogramSeries> {
  /** Mutable on purpose: prom-client's Registry renames counters in OpenMetrics mode, as it does its own. */
  name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum' as const;
  /** Series in creation order, which is the order prom-client prints them; keyed by the joined label values. */
  #byLabels = new Map<string, S>();
  /** The hot-path index: several keys may lead to one series (e.g. statuses normalised to the same label). */
  #byKey = new Map<SeriesKey, S>();
  readonly #create: (labels: Readonly<Record<string, string>>) => S;

  /** `create` makes a zeroed series for a label set (a function, so it may be used before subclass fields exist). */
  constructor(config: FastMetricConfig, create: (labels: Readonly<Record<string, string>>) => S) {
    if (!NAME_RE.test(config.name)) throw new RangeError(`invalid metric name ${config.name}`);
    const labelNames = config.labelNames ?? [];
    for (const label of labelNames) {
      if (!LABEL_RE.test(label) || label.startsWith('__')) throw new RangeError(`invalid label name ${label}`);
    }
    if (config.help === '') throw new RangeError(`metric ${config.name} needs help text`);
    this.name = config.name;
    this.help = config.help;
    this.labelNames = [...labelNames];
    this.#create = create;
    // As prom-client: a metric without labels has its one series from the start.
    if (this.labelNames.length === 0) this.series('', []);
  }

  /** Hot path: the series registered for `key`, or undefined the first time (then call `series`). */
  at(key: SeriesKey): S | undefined {
    return this.#byKey.get(key);
  }

  /**
   * Miss path: the series for these label values (one per label name, in order), created at zero on first use and
   * remembered under `key` so later `at(key)` calls find it. A series appears in /metrics from its creation.
   */
  series(key: SeriesKey, labelValues: readonly string[]): S {
    if (labelValues.length !== this.labelNames.length) {
      throw new RangeError(`${this.name} takes ${String(this.labelNames.length)} label values, got ${String(labelValues.length)}`);
    }
    const joined = labelValues.join('\u0000');
    let s = this.#byLabels.get(joined);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = labelValues[i] as string));
      s = this.#create(Object.freeze(labels));
      this.#byLabels.set(joined, s);
    }
    this.#byKey.set(key, s);
    return s;
  }

  /**
   * Forgets every series (the Registry's `resetMetrics()` calls it); handles taken before go stale, so callers look
   * series up by key each time rather than keep them. As prom-client, a label-less counter gets its series back at
   * zero at once, a label-less histogram only on its next observation.
   */
  reset(): void {
    this.#byLabels = new Map();
    this.#byKey = new Map();
    if (this.labelNames.length === 0 && this.recreateOnReset) this.series('', []);
  }

  /**
   * Drops the series whose labels `keep` refuses, and every key that led to them (a reload removed the route,
   * service or upstream they name). The others keep their values and their order. A dropped label set asked for
   * again starts a new series at zero, which is what Prometheus expects of a series that disappeared.
   */
  retainWhere(keep: (labels: Readonly<Record<string, string>>) => boolean): void {
    let dropped = false;
    for (const [joined, s] of this.#byLabels) {
      if (keep(s.labels)) continue;
      this.#byLabels.delete(joined);
      dropped = true;
    }
    if (!dropped) return;
    for (const [key, s] of this.#byKey) if (!keep(s.labels)) this.#byKey.delete(key);
  }

  protected abstract readonly recreateOnReset: boolean;

  protected all(): IterableIterator<S> {
    return this.#byLabels.values();
  }
}

/** A counter; same text as prom-client's `Counter` fed the same increments. */
export class FastCounter extends FastMetric<CounterSeries> {
  readonly type = 'counter' as const;
  protected readonly recreateOnReset = true;

  constructor(config: FastMetricConfig) {
    super(config, (labels) => new CounterSeries(labels));
  }

  /** Called by the Registry at scrape time. */
  get(): MetricSnapshot {
    const values: Sample[] = [];
    for (const s of this.all()) values.push({ value: s.value, labels: s.labels });
    return { help: this.help, name: this.name, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A histogram with fixed ascending bucket bounds; same text as prom-client's `Histogram` with those buckets. */
export class FastHistogram extends FastMetric<HistogramSeries> {
  readonly type = 'histogram' as const;
  protected readonly recreateOnReset = false;
  readonly buckets: readonly number[];

  /** `buckets`: ascending finite upper bounds (prom-client's default set when omitted); "+Inf" is implied. */
  constructor(config: FastMetricConfig & { buckets?: readonly number[] }) {
    const buckets = Object.freeze([...(config.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])]);
    buckets.forEach((b, i) => {
      if (!Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number))) throw new RangeError('buckets must be ascending and finite');
    });
    if (config.labelNames?.includes('le') === true) throw new RangeError('le is a reserved label name');
    super(config, (labels) => new HistogramSeries(labels, buckets));
    this.buckets = buckets;
  }

  /** For /metrics: series labels go in `sharedLabels`, so they print after `le` as prom-client prints them. */
  getForPromString(): MetricSnapshot {
    const bucketName = `${this.name}_bucket`;
    const sumName = `${this.name}_sum`;
    const countName = `${this.name}_count`;
    const bounds = this.buckets;
    const values: Sample[] = [];
    for (const s of this.all()) {
      const shared = s.labels as Record<string, string>;
      let acc = 0;
      for (let i = 0; i < bounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({ labels: { le: bounds[i] as number }, sharedLabels: shared, value: acc, metricName: bucketName });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: s.count, metricName: bucketName });
      values.push({ labels: {}, sharedLabels: shared, value: s.sum, metricName: sumName });
      values.push({ labels: {}, sharedLabels: shared, value: s.count, metricName: countName });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** For `getMetricsAsJSON()`: as prom-client, each sample's labels are `le` plus the series labels in one object. */
  get(): MetricSnapshot {
    const snapshot = this.getForPromString();
    snapshot.values = snapshot.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return snapshot;
  }
}

/**
 * Adds a fast collector to a prom-client Registry. prom-client's Registry only duck-types what it registers (name,
 * type, get/getForPromString, reset), but its typings name only its own classes, hence the one cast here.
 */
export function registerFast<T extends RegistryContentType>(registry: Registry<T>, metric: FastCounter | FastHistogram): void {
  registry.registerMetric(metric as unknown as Parameters<Registry<T>['registerMetric']>[0]);
}
