// The rapid-reset rule (CVE-2023-44487): mostly Envoy's, a share rather than a rate, with a rate bound beside it. A
// client that resets a stream within PREMATURE_RESET_MS of opening it has made the gateway start work for nothing;
// a connection where such resets are at least half of its streams (judged against PREMATURE_RESET_STREAMS at least)
// is an attack. A fixed rate alone (100 resets a second) also cut clients that cancel honestly at volume: a gRPC
// channel whose calls meet their deadlines together behind a slow upstream, or a load balancer multiplexing its
// users' cancellations onto one connection, was sent GOAWAY with every call it still had open. But the share alone
// let a client that mixes in two cheap requests (answered by the gateway itself) per reset start a thousand upstream
// requests a second for as long as it liked (found by review): so premature resets are also bounded by a bucket,
// large enough to take an honest burst.

/** A client's reset of a stream younger than this is premature (Envoy's premature_reset_min_stream_lifetime). */
export const PREMATURE_RESET_MS = 1_000;
/** Streams a connection is judged against at least (Envoy's premature_reset_total_stream_count). */
export const PREMATURE_RESET_STREAMS = 500;
/**
 * Premature resets a connection may make in a burst whatever their share, then PREMATURE_RESETS_PER_SECOND more a
 * second (a bucket: a fixed window let twice the burst through across its edge, found by review). Both under
 * nghttp2's own bucket of 1,000 RST_STREAM frames and 33 more a second (node 20 cannot set it), so that for resets
 * the client sends this bound is met first, logged and answered ENHANCE_YOUR_CALM, rather than nghttp2's unlogged
 * INTERNAL_ERROR; and it alone bounds the resets nghttp2 makes itself for a client's protocol error, which its
 * bucket does not count.
 */
export const PREMATURE_RESET_BURST = 900;
export const PREMATURE_RESETS_PER_SECOND = 30;

/** One connection's count. Pure (the caller passes each reset's stream age and the clock), so it is unit-tested. */
export class PrematureResets {
  #closed = 0;
  #premature = 0;
  #tokens = PREMATURE_RESET_BURST;
  #filledAt = -Infinity;

  /** A stream of the connection closed, one not reported to reset() (whatever closed it). */
  closed(): void {
    this.#closed++;
  }

  /**
   * The client reset a stream `ageMs` after it opened (at `now`, ms): true once the connection is to be refused. The
   * stream counts as closed from here: its close is not reported to closed() again.
   */
  reset(ageMs: number, now: number): boolean {
    this.#closed++;
    if (ageMs >= PREMATURE_RESET_MS) return false;
    this.#premature++;
    if (this.#filledAt !== -Infinity) {
      this.#tokens = Math.min(PREMATURE_RESET_BURST, this.#tokens + ((now - this.#filledAt) * PREMATURE_RESETS_PER_SECOND) / 1_000);
    }
    this.#filledAt = now;
    if (this.#tokens < 1) return true;
    this.#tokens -= 1;
    return this.#premature * 2 >= Math.max(this.#closed, PREMATURE_RESET_STREAMS);
  }

  /** What the refusal's log line says. */
  get counts(): { readonly premature_resets: number; readonly streams_closed: number } {
    return { premature_resets: this.#premature, streams_closed: this.#closed };
  }
}
