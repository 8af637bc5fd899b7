// The tracing interface the pipeline and the features see; the OpenTelemetry SDK stays behind it (loaded lazily).
import type { Phase } from '../../pipeline/phase.js';
import type { RequestContext } from '../../pipeline/context.js';
import { ContextSlot } from '../../pipeline/slot.js';

/** The longest attribute value a span keeps, in characters (OpenTelemetry's attributeValueLengthLimit). */
export const MAX_ATTRIBUTE_LENGTH = 1024;

/** A request's tracing state, kept in the TRACE slot while tracing is on. */
export interface RequestTrace {
  /** 32 lower-case hex digits; written as `trace_id` in every log line of the request. */
  readonly traceId: string;
}

/** `TRACE.get(ctx)?.traceId`: the request's trace id while tracing is on, else undefined. */
export const TRACE = new ContextSlot<RequestTrace>('trace');

/** internal: work inside the gateway (token check, hashing); client: a call to a store. */
export type ChildKind = 'internal' | 'client';

/** What a child span is about; attribute values must never hold tokens, passwords or hashes. */
export type SpanAttributes = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * Request tracing, created once per gateway (server.ts). With tracing off it is the no-op `NO_TRACING`: `run`
 * calls straight through, `phase` is undefined (so the driver has no hook to call) and `child` calls `fn` directly.
 */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Starts the request's server span (continuing a trusted incoming `traceparent`), fills the TRACE slot and runs
   * `fn(ctx)` with that span as the parent of every child span made while the request runs (async context).
   */
  run(ctx: RequestContext, fn: (ctx: RequestContext) => void): void;
  /**
   * The tracing phase (only when on): starts a span per upstream attempt and sends its `traceparent` upstream,
   * sets the trace-id response header, and ends the spans in the logging phase.
   */
  readonly phase: Phase | undefined;
  /**
   * Runs `fn` in a child span of the request being handled (found through the async context), ended when `fn`
   * returns or its promise settles. Outside a request, or when the request is not sampled, just calls `fn`.
   */
  child<T>(name: string, kind: ChildKind, attributes: SpanAttributes, fn: () => T): T;
  /** Spans finished but never delivered to the collector (queue full or export failed), since start. */
  droppedSpans(): number;
  /** Exports what is queued (bounded by the exporter's timeout) and stops. */
  shutdown(): Promise<void>;
}

/** Tracing off: nothing is loaded, nothing is allocated per request. */
export const NO_TRACING: Tracing = {
  enabled: false,
  run(ctx, fn) {
    fn(ctx);
  },
  phase: undefined,
  child(_name, _kind, _attributes, fn) {
    return fn();
  },
  droppedSpans: () => 0,
  shutdown: () => Promise.resolve(),
};
