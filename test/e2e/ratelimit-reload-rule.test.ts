// A reload that slows the rate limit (memory store, real sockets): a client drained under the old rule keeps its debt
// under the new one. The store once forgot the bucket when the old rule would have refilled it (review D7), so the
// client got a fresh burst right after the reload.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sleep } from '../helpers/wait.js';
import { parseConfigObject } from '../../src/config/load.js';

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

/** One upstream, the default rate-limit policy at `requestsPerMinute`, burst 5. */
function config(requestsPerMinute: number): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    middleware: { rate_limit: { enabled: true, requests_per_minute: requestsPerMinute, burst_size: 5 } },
  };
}

test('drained at 600/min, reloaded to 6/min: once the old rule would have refilled the bucket, still no fresh burst', async () => {
  const gw = await startInProcess(config(600));
  after(() => gw.close());
  // 600/min refills the whole burst of 5 in 0.5 s. Drain it (a token comes back every 100 ms, so until a 429).
  let drainedAt = 0;
  for (let i = 0; i < 100 && drainedAt === 0; i++) {
    const res = await client.request(`${gw.url}/drain`);
    if (res.status === 429) drainedAt = performance.now();
  }
  assert.ok(drainedAt > 0, 'the bucket drains');
  await gw.gateway.reload(parseConfigObject(config(6)));
  // Past the old rule's refill time (0.5 s): at 6/min the bucket holds about 0.07 tokens, not 5.
  const wait = 700 - (performance.now() - drainedAt);
  if (wait > 0) await sleep(wait);
  const res = await client.request(`${gw.url}/after-reload`);
  assert.equal(res.status, 429, 'no fresh burst after the reload');
  assert.equal(res.headers['ratelimit-remaining'], '0');
  assert.equal(res.headers['ratelimit-policy'], '5;w=50', 'decided under the new rule');
  // The next token is up to 10 s away at 6/min: less the refill since the drain, and less the fraction of a token
  // the drain left (a loaded machine's slow requests let the old rule refill part of one between them), so anything
  // from 1 to 10 s.
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
});
