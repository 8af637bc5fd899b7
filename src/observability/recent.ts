// RecentTraffic: a fixed ring of per-second request counts and latency histograms (~5 minutes) for the dashboard.

/**
 * Latency bucket upper bounds in milliseconds: geometric steps of 25 % from 0.1 ms, so a percentile read from them is
 * within ~12 % of the true value. The last bucket (Infinity) takes anything slower than ~50 s.
 */
const BOUNDS_MS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let b = 0.1; b < 50_000; b *= 1.25) bounds.push(b);
  bounds.push(Number.POSITIVE_INFINITY);
  return bounds;
})();
const BUCKETS = BOUNDS_MS.length;

/** One point of a chart series: request rate and latency percentiles over `step_s` seconds ending at `t`. */
export interface TrafficPoint {
  /** Unix time in ms of the end of the step. */
  readonly t: number;
  /** Requests per second over the step. */
  readonly rate: number;
  /** Latency percentiles in ms; null when the step saw no request. */
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  /** Responses with a 5xx status in the step. */
  readonly errors: number;
}

/** Totals over a window (the dashboard's headline numbers). */
export interface TrafficSummary {
  readonly window_s: number;
  readonly requests: number;
  /** Requests per second over the window. */
  readonly rate: number;
  readonly errors: number;
  readonly p50_ms: number | null;
  readonly p90_ms: number | null;
  readonly p99_ms: number | null;
}

export interface RecentTrafficOptions {
  /** Seconds kept; default 300 (5 minutes). */
  readonly seconds?: number;
  /**
   * The clock the ring's seconds are counted on, ms; injectable for tests. Default performance.now(): monotonic. On
   * the wall clock a step back of 10 minutes hid every request counted before it (their seconds lay in the future)
   * and divided the ones after it by the gateway's age, now negative, held at 1 s; a step forward emptied the window.
   */
  readonly now?: () => number;
  /** The wall clock (ms since the epoch) the chart's times `t` are given on; default Date.now, or `now` when only that is given. */
  readonly wallNow?: () => number;
}

/**
 * Memory is fixed at start-up (seconds × ~50 buckets of Uint32). Written once per request by the metrics phase,
 * read every few seconds by /api/status. Slots are recycled lazily: a slot whose stamp is not the second being
 * read or written is treated as empty, so an idle gateway needs no timer.
 */
export class RecentTraffic {
  readonly #seconds: number;
  readonly #now: () => number;
  readonly #wallNow: () => number;
  /** Construction time: a young gateway's rate is divided by its age, not by the whole window. */
  readonly #createdAt: number;
  /** The whole second (of #now) each slot currently holds. */
  readonly #stamp: Float64Array;
  readonly #count: Uint32Array;
  readonly #errors: Uint32Array;
  /** seconds × BUCKETS latency counts. */
  readonly #latency: Uint32Array;

  constructor(options: RecentTrafficOptions = {}) {
    this.#seconds = options.seconds ?? 300;
    this.#now = options.now ?? (() => performance.now());
    this.#wallNow = options.wallNow ?? options.now ?? Date.now;
    this.#createdAt = this.#now();
    this.#stamp = new Float64Array(this.#seconds).fill(-1);
    this.#count = new Uint32Array(this.#seconds);
    this.#errors = new Uint32Array(this.#seconds);
    this.#latency = new Uint32Array(this.#seconds * BUCKETS);
  }

  /** Records one finished request. Called from the logging phase; O(log buckets), no allocation. */
  record(durationMs: number, status: number): void {
    const second = Math.floor(this.#now() / 1000);
    const slot = second % this.#seconds;
    if (this.#stamp[slot] !== second) {
      this.#stamp[slot] = second;
      this.#count[slot] = 0;
      this.#errors[slot] = 0;
      this.#latency.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS);
    }
    this.#count[slot]!++;
    if (status >= 500) this.#errors[slot]!++;
    this.#latency[slot * BUCKETS + bucketOf(durationMs)]!++;
  }

  /**
   * Totals over the last `windowSeconds` whole seconds including the current one (default 60). The rate divides by
   * the seconds elapsed, counting the running second as the fraction that has passed (and never more than the age).
   */
  summary(windowSeconds = 60): TrafficSummary {
    const nowMs = this.#now();
    const current = Math.floor(nowMs / 1000);
    const window = Math.min(windowSeconds, this.#seconds);
    const hist = new Uint32Array(BUCKETS);
    const totals = this.#sum(current - window + 1, current, hist);
    const elapsed = Math.min(window - 1 + (nowMs % 1000) / 1000, (nowMs - this.#createdAt) / 1000);
    return {
      window_s: window,
      requests: totals.count,
      rate: round(totals.count / Math.max(elapsed, 1)),
      errors: totals.errors,
      p50_ms: percentile(hist, totals.count, 0.5),
      p90_ms: percentile(hist, totals.count, 0.9),
      p99_ms: percentile(hist, totals.count, 0.99),
    };
  }

  /**
   * The chart series: the whole ring cut into steps of `stepSeconds` (default 5), oldest first. The running second
   * is left out, so the last point never shows a half-counted rate.
   */
  series(stepSeconds = 5): TrafficPoint[] {
    const nowMs = this.#now();
    const last = Math.floor(nowMs / 1000) - 1;
    // Seconds of #now are shown on the wall clock as it reads now: the step's end is as long ago as it is on #now.
    const toWall = this.#wallNow() - nowMs;
    const steps = Math.floor(this.#seconds / stepSeconds);
    const points: TrafficPoint[] = [];
    const hist = new Uint32Array(BUCKETS);
    for (let i = steps - 1; i >= 0; i--) {
      const to = last - i * stepSeconds;
      hist.fill(0);
      const totals = this.#sum(to - stepSeconds + 1, to, hist);
      points.push({
        t: Math.round((to + 1) * 1000 + toWall),
        rate: round(totals.count / stepSeconds),
        p50_ms: percentile(hist, totals.count, 0.5),
        p99_ms: percentile(hist, totals.count, 0.99),
        errors: totals.errors,
      });
    }
    return points;
  }

  /** Adds the slots of seconds `from`..`to` (inclusive) into `hist`; returns their request and error counts. */
  #sum(from: number, to: number, hist: Uint32Array): { count: number; errors: number } {
    let count = 0;
    let errors = 0;
    for (let second = Math.max(from, 0); second <= to; second++) {
      const slot = second % this.#seconds;
      if (this.#stamp[slot] !== second) continue;
      count += this.#count[slot]!;
      errors += this.#errors[slot]!;
      const base = slot * BUCKETS;
      for (let b = 0; b < BUCKETS; b++) hist[b]! += this.#latency[base + b]!;
    }
    return { count, errors };
  }
}

/** Index of the first bucket whose bound is ≥ ms (binary search). */
function bucketOf(ms: number): number {
  let lo = 0;
  let hi = BUCKETS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (BOUNDS_MS[mid]! >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The bucket bound below which `q` of the `total` samples fall; null for no samples. */
function percentile(hist: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < BUCKETS; b++) {
    seen += hist[b]!;
    if (seen >= rank) {
      // The overflow bucket has no upper bound: report the last finite one.
      const bound = BOUNDS_MS[b] === Number.POSITIVE_INFINITY ? BOUNDS_MS[b - 1]! : BOUNDS_MS[b]!;
      return round(bound);
    }
  }
  return null;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
