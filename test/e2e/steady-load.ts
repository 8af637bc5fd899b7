// Steady proxied load for the Redis topology suites: a few workers cycling through many client addresses (sent as
// X-Forwarded-For to a gateway that trusts 127.0.0.1), recording every answer with the limiter's remaining count.
import { createClient } from '../helpers/http.js';

/** One answered (or failed: status 0) request. */
export interface Sample {
  readonly client: string;
  readonly status: number;
  /** RateLimit-Remaining of the answer, when it had one. */
  readonly remaining: number | undefined;
  /** ms since the load started, when the answer arrived. */
  readonly at: number;
}

export interface Load {
  /** Everything answered so far (live view). */
  readonly samples: readonly Sample[];
  /** ms since the load started. */
  now(): number;
  /** Stops sending, waits for requests in flight, and returns every sample. */
  stop(): Promise<Sample[]>;
}

/** Sends GET `url` for `clients` in turn from `workers` loops until stop(); a failed request is a status-0 sample. */
export function startLoad(url: string, clients: readonly string[], workers = 6): Load {
  const http = createClient({ connections: workers });
  const samples: Sample[] = [];
  const started = performance.now();
  let running = true;
  let next = 0;
  const loop = async (): Promise<void> => {
    while (running) {
      const client = clients[next++ % clients.length] as string;
      try {
        const res = await http.request(url, { headers: { 'x-forwarded-for': client }, timeoutMs: 10_000 });
        const remaining = res.headers['ratelimit-remaining'];
        samples.push({ client, status: res.status, remaining: remaining === undefined ? undefined : Number(remaining), at: performance.now() - started });
      } catch {
        samples.push({ client, status: 0, remaining: undefined, at: performance.now() - started });
      }
    }
  };
  const loops = Array.from({ length: workers }, loop);
  return {
    samples,
    now: () => performance.now() - started,
    async stop() {
      running = false;
      await Promise.all(loops);
      await http.close();
      return samples;
    },
  };
}

/** `{ 200: n, 503: m, … }` of some samples. */
export function countStatuses(samples: readonly Sample[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of samples) counts[s.status] = (counts[s.status] ?? 0) + 1;
  return counts;
}

/**
 * Checks a client's bucket arithmetic: with a burst far above the requests sent and a negligible refill, the
 * lowest RateLimit-Remaining it saw must be burst − (requests admitted). Returns the difference (0 = exact).
 */
export function bucketDrift(samples: readonly Sample[], client: string, burst: number): number {
  const mine = samples.filter((s) => s.client === client && s.status === 200);
  const lowest = Math.min(...mine.map((s) => s.remaining ?? Number.POSITIVE_INFINITY));
  return lowest - (burst - mine.length);
}

/** Client addresses 10.x.y.z, as many as asked for, whose bucket keys satisfy `wanted`. */
export function pickClients(count: number, wanted: (bucket: string) => boolean, start = 0): string[] {
  const out: string[] = [];
  for (let i = start; out.length < count && i < start + 16_000_000; i++) {
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    if (wanted(`p:${address}`)) out.push(address);
  }
  return out;
}
