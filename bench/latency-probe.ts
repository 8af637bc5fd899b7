// Open-loop latency probe: GETs at a fixed rate, latency measured from each request's scheduled time (no
// coordinated omission), so p99 reflects what users see at a given load rather than a saturated queue.
// Usage (child process of bench/run.ts): latency-probe.ts URL RATE SECONDS [HEADER]  → prints one JSON line.
// With PROBE_SAMPLES=1 the line also holds every request's latency in schedule order (request i was due at
// startEpoch + i × 1000 / rate, in ms since the epoch), for a caller that compares windows of the run.
import { Pool } from 'undici';
import { percentile } from './harness.js';

const [url, rateArg, secondsArg, header] = process.argv.slice(2);
const target = new URL(url!);
const rate = Number(rateArg ?? '1000');
const seconds = Number(secondsArg ?? '10');
const headers: Record<string, string> = {};
if (header) {
  const i = header.indexOf(':');
  headers[header.slice(0, i).trim().toLowerCase()] = header.slice(i + 1).trim();
}
const pool = new Pool(target.origin, { connections: 64, pipelining: 1 });
/** By request index (schedule order). */
const latencies: number[] = [];
let errors = 0;
const start = performance.now();
const total = Math.floor(rate * seconds);
let sent = 0;

async function one(index: number, scheduled: number): Promise<void> {
  try {
    const res = await pool.request({ path: target.pathname, method: 'GET', headers });
    await res.body.dump();
    if (res.statusCode !== 200) errors++;
  } catch {
    errors++;
  }
  latencies[index] = performance.now() - scheduled;
}

const inflight: Promise<void>[] = [];
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    // Send every request whose scheduled time has come (timers are coarse; catch up in bursts).
    while (sent < total && start + (sent * 1000) / rate <= now) {
      inflight.push(one(sent, start + (sent * 1000) / rate));
      sent++;
    }
    if (sent >= total) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
await Promise.all(inflight);
await pool.close();
const sorted = [...latencies].sort((a, b) => a - b);
const at = (q: number) => percentile(sorted, q);
const samples = process.env.PROBE_SAMPLES === '1' ? { startEpoch: performance.timeOrigin + start, samples: latencies } : {};
process.stdout.write(`${JSON.stringify({ rate, seconds, count: sorted.length, errors, p50: at(0.5), p99: at(0.99), max: at(1), ...samples })}\n`);
