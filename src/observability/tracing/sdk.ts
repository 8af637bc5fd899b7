// The OpenTelemetry SDK pipeline: tracer provider, parent-based ratio sampler, batch processor, OTLP/HTTP exporter,
// and the count of spans that never reached the collector. Imported only when tracing is on (see index.ts).
import type { Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { EVENTS } from '../events.js';
import { deadlineAgentFactory } from './export-agent.js';
import { MAX_ATTRIBUTE_LENGTH } from './types.js';

/** The `tracing` config keys the SDK reads. */
export interface SdkSettings {
  readonly otlp_endpoint: string;
  readonly sample_ratio: number;
  readonly service_name: string;
}

/**
 * Finished spans waiting for export, at most. Beyond it spans are dropped (and counted) rather than held: a slow or
 * absent collector must cost bounded memory.
 */
const MAX_QUEUED_SPANS = 2048;
/** How often a batch is sent; OpenTelemetry's default is 5 s, shorter keeps traces timely in a dev loop. */
const EXPORT_DELAY_MS = 1000;
/** Longest wait for the collector per export (retries included); then the batch is counted as dropped. */
const EXPORT_TIMEOUT_MS = 5000;

/** Counts of what happened to finished, sampled spans. */
export class SpanCounts {
  /** Handed to the batch processor and not yet given to the exporter. */
  queued = 0;
  /** Never delivered: the queue was full, or the export failed or timed out. */
  dropped = 0;
}

/** The provider and its bookkeeping. */
export interface TracingSdk {
  readonly provider: BasicTracerProvider;
  readonly counts: SpanCounts;
}

/** Builds the SDK pipeline; nothing is registered globally (the gateway passes its tracer around explicitly). */
export function createSdk(settings: SdkSettings, version: string, logger: Logger): TracingSdk {
  const counts = new SpanCounts();
  const exporter = new CountingExporter(
    new OTLPTraceExporter({
      url: settings.otlp_endpoint,
      timeoutMillis: EXPORT_TIMEOUT_MS,
      // The exporter's timeout is an idle one (each byte restarts it): this one ends a request that trickles on.
      httpAgentOptions: deadlineAgentFactory(EXPORT_TIMEOUT_MS),
    }),
    counts,
    logger,
  );
  const batch = new BatchSpanProcessor(exporter, {
    maxQueueSize: MAX_QUEUED_SPANS,
    maxExportBatchSize: 512,
    scheduledDelayMillis: EXPORT_DELAY_MS,
    exportTimeoutMillis: EXPORT_TIMEOUT_MS,
  });
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.service_name, [ATTR_SERVICE_VERSION]: version }),
    ),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) }),
    // Attribute values come from the client (url.path, up to node's 16 KB head): two spans a request at that size
    // held 30 MB more in a queue a hung collector fills. Cut at MAX_ATTRIBUTE_LENGTH characters. The SDK's cut is a
    // substring, which V8 keeps as a view of the whole value: otel-tracing.ts (ownText) copies client text first.
    spanLimits: { attributeValueLengthLimit: MAX_ATTRIBUTE_LENGTH },
    spanProcessors: [new BoundedProcessor(batch, counts, logger)],
  });
  return { provider, counts };
}

/** At most one Trace Queue Full line this often: the drops in between are counted into the next. */
const QUEUE_FULL_LOG_EVERY_MS = 60_000;
/** The first line waits this long after the first drop, so that it counts the burst rather than its first span. */
const QUEUE_FULL_FIRST_LINE_MS = 1_000;

/**
 * Admits finished spans into the batch processor while fewer than MAX_QUEUED_SPANS wait, and counts the rest as
 * dropped. (The SDK's own processor drops silently beyond its queue; this makes the drop visible in /metrics.) A
 * collector that answers, but slower than spans are made, fails no export, so Trace Export Failed never tells it:
 * the drops are logged as Trace Queue Full with how many since the previous line, a second after the first drop and
 * then at most once a minute while drops go on (a timer, unref'd: the count of a burst is written though no span
 * comes after it), and the count still unwritten at shutdown.
 */
class BoundedProcessor implements SpanProcessor {
  #unlogged = 0;
  #loggedAt = -Infinity;
  #report: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly inner: SpanProcessor,
    private readonly counts: SpanCounts,
    private readonly logger: Logger,
  ) {}

  #reportDrops(): void {
    clearTimeout(this.#report);
    this.#report = undefined;
    if (this.#unlogged === 0) return;
    this.logger.warn({ dropped: this.#unlogged, queue_limit: MAX_QUEUED_SPANS }, EVENTS.traceQueueFull);
    this.#loggedAt = performance.now();
    this.#unlogged = 0;
  }

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & 1) === 0) return; // not sampled: never exported anyway
    if (this.counts.queued >= MAX_QUEUED_SPANS) {
      this.counts.dropped++;
      this.#unlogged++;
      if (this.#report === undefined) {
        const wait = Math.max(QUEUE_FULL_FIRST_LINE_MS, this.#loggedAt + QUEUE_FULL_LOG_EVERY_MS - performance.now());
        this.#report = setTimeout(() => this.#reportDrops(), wait);
        this.#report.unref();
      }
      return;
    }
    this.counts.queued++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    this.#reportDrops();
    return this.inner.shutdown();
  }
}

/**
 * Wraps the OTLP exporter: spans leave the queue when a batch is handed over, and a failed batch counts as
 * dropped. A collector outage is logged once when it starts and once when exports succeed again. Exports overlap
 * (the batch processor gives up on a hung one after its own timeout and sends the next, while the exporter's request
 * still runs), so they are numbered: a failure of an export sent before the last success belongs to the outage that
 * success ended, and a success of one sent before the failure that began an outage does not end it. Judged by
 * whichever answered last, one outage logged Failed, Recovered, Failed, Recovered.
 */
export class CountingExporter implements SpanExporter {
  #failing = false;
  /** Exports handed over so far; the number of the last one that succeeded, and of the failure that began the outage. */
  #sent = 0;
  #lastSuccess = 0;
  #outageFrom = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly counts: SpanCounts,
    private readonly logger: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.counts.queued = Math.max(0, this.counts.queued - spans.length);
    const number = ++this.#sent;
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        if (number > this.#lastSuccess) this.#lastSuccess = number;
        // Only an export sent after the failure that began the outage ends it: an older one that succeeds late
        // says nothing of the collector since.
        if (this.#failing && number > this.#outageFrom) {
          this.logger.info({}, EVENTS.traceExportRecovered);
          this.#failing = false;
        }
      } else {
        this.counts.dropped += spans.length;
        if (number < this.#lastSuccess) {
          // Sent before the export that ended the outage: counted, not a new outage.
        } else if (!this.#failing) {
          // The error's class, and its code or the collector's HTTP status: never its message, which may quote the
          // endpoint's answer.
          this.logger.warn({ dropped: spans.length, cause: result.error?.name, ...failureCode(result.error) }, EVENTS.traceExportFailed);
          this.#failing = true;
          this.#outageFrom = number;
        }
      }
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * What an export failure says of itself beyond its class: node's error code (ECONNREFUSED, our EXPORT_DEADLINE) or
 * the collector's HTTP status (the exporter's OTLPExporterError carries it as a number). Only values of those shapes.
 */
export function failureCode(error: unknown): { code?: string; status?: number } {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,39}$/.test(code)) return { code };
  if (typeof code === 'number' && Number.isInteger(code) && code >= 100 && code <= 599) return { status: code };
  return {};
}
