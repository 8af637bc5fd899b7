// The rapid-reset rule (CVE-2023-44487), as Envoy judges it: not a rate of resets, but their share. A client that
// resets a stream within PREMATURE_RESET_MS of opening it has made the gateway start work for nothing; a connection
// where such resets are at least half of its streams (counted once it has carried PREMATURE_RESET_STREAMS, before
// that against that many) is an attack. A fixed rate (100 resets a second) also cut clients that cancel honestly at
// volume: a gRPC channel whose calls hit their deadlines while an upstream is slow, or a load balancer multiplexing
// its users' cancellations onto one connection, was sent GOAWAY with every call it still had open.

/** A client's reset of a stream younger than this is premature (Envoy's premature_reset_min_stream_lifetime). */
export const PREMATURE_RESET_MS = 1_000;
/** Streams a connection is judged against at least (Envoy's premature_reset_total_stream_count). */
export const PREMATURE_RESET_STREAMS = 500;

/** One connection's count. Pure (the caller passes each reset's stream age), so it has a cheap unit test. */
export class PrematureResets {
  #closed = 0;
  #premature = 0;

  /** A stream of the connection closed, whatever closed it. */
  closed(): void {
    this.#closed++;
  }

  /** The client reset a stream `ageMs` after it opened: true once the connection is to be refused. */
  reset(ageMs: number): boolean {
    if (ageMs >= PREMATURE_RESET_MS) return false;
    this.#premature++;
    return this.#premature * 2 >= Math.max(this.#closed, PREMATURE_RESET_STREAMS);
  }

  /** What the refusal's log line says. */
  get counts(): { readonly premature_resets: number; readonly streams_closed: number } {
    return { premature_resets: this.#premature, streams_closed: this.#closed };
  }
}
