// An in-process gateway that limits by client address through Redis and refuses (503, on_store_error: deny) while
// Redis cannot decide, so a 200 proves Redis decided; and the wait for that first decision. Shared by the suites that
// check the gateway reaches a Redis named one way or another (a URL's scheme case, an IPv6 literal).
import { startInProcess, upstreams, type InProcessGateway } from './gateway.js';
import type { TestClient } from './http.js';
import { waitFor } from './prometheus.js';

export interface RedisLimitedGatewayOptions {
  /** The `redis` section: url, cluster or sentinel (a key_prefix given here wins over `keyPrefix`). */
  readonly redis: Record<string, unknown>;
  /** Keys of this gateway's buckets start with it: unique per suite and process, so runs never share a bucket. */
  readonly keyPrefix: string;
  /** The one upstream's port on 127.0.0.1. */
  readonly backendPort: number;
  readonly requestsPerMinute: number;
  readonly burstSize: number;
}

/** Starts the gateway; the caller closes it. */
export function startRedisLimitedGateway(options: RedisLimitedGatewayOptions): Promise<InProcessGateway> {
  const { redis, keyPrefix, backendPort, requestsPerMinute, burstSize } = options;
  return startInProcess({
    redis: { key_prefix: keyPrefix, ...redis },
    load_balancing: { upstreams: upstreams([backendPort]) },
    middleware: { rate_limit: { enabled: true, requests_per_minute: requestsPerMinute, burst_size: burstSize, on_store_error: 'deny' } },
  });
}

/**
 * Sends GET /a until the limiter answers 200 (Redis decided; 503 until then) and returns that answer's
 * RateLimit-Remaining: the tokens left in the Redis bucket. Fails after `timeoutMs`.
 */
export async function untilRedisDecides(client: TestClient, gw: InProcessGateway, timeoutMs: number): Promise<number> {
  let remaining = -1;
  await waitFor('the limiter to decide through Redis', async () => {
    const res = await client.request(`${gw.url}/a`);
    if (res.status !== 200) return false;
    remaining = Number(res.headers['ratelimit-remaining']);
    return true;
  }, timeoutMs);
  return remaining;
}
