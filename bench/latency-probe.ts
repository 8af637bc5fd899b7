// Open-loop latency probe: GETs at a fixed rate, latency measured from each request's scheduled time (no
// coordinated omission), so p99 reflects what users see at a given load rather than a saturated queue.
// Usage (child process of bench/run.ts): latency-probe.ts URL RATE SECONDS [HEADER]  → prints one JSON line.
import { Pool } from 'undici';

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
const latencies: number[] = [];
let errors = 0;
const start = performance.now();
const total = Math.floor(rate * seconds);
let sent = 0;

async function one(scheduled: number): Promise<void> {
  try {
    const res = await pool.request({ path: target.pathname, method: 'GET', headers });
    await res.body.dump();
    if (res.statusCode !== 200) errors++;
  } catch {
    errors++;
  }
  latencies.push(performance.now() - scheduled);
}

const inflight: Promise<void>[] = [];
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    // Send every request whose scheduled time has come (timers are coarse; catch up in bursts).
    while (sent < total && start + (sent * 1000) / rate <= now) {
      inflight.push(one(start + (sent * 1000) / rate));
      sent++;
    }
    if (sent >= total) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
await Promise.all(inflight);
await pool.close();
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
process.stdout.write(`${JSON.stringify({ rate, seconds, count: latencies.length, errors, p50: at(0.5), p99: at(0.99), max: at(1) })}\n`);
