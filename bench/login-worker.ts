// Child process of login-load.ts: registers one user, then logs in again and again with N requests in flight.
// Usage: login-worker.ts BASE_URL [CONCURRENCY=4] [RATE=0]
// RATE logins per second at most (0: as fast as `concurrency` loops can go).
const [base, concurrencyArg, rateArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? '4');
const rate = Number(rateArg ?? '0');
const email = `login-bench-${process.pid}@example.com`;
const body = JSON.stringify({ email, password: 'SecurePass123!' });
const headers = { 'content-type': 'application/json' };

await fetch(`${base}/auth/register`, { method: 'POST', headers, body });
let count = 0;
let running = true;
const started = performance.now();
process.on('SIGTERM', () => {
  running = false;
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`rate=${(count / seconds).toFixed(2)}\n`);
  process.exit(0);
});
process.stdout.write('ready\n');
let next = performance.now();
async function loop(): Promise<void> {
  while (running) {
    if (rate > 0) {
      // Claim the next slot of the schedule and wait for it: at most `rate` logins start per second.
      const slot = next;
      next = Math.max(next, performance.now()) + 1000 / rate;
      const wait = slot - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    // A flood meets closed connections and 503s: neither may end the worker.
    const status = await fetch(`${base}/auth/login`, { method: 'POST', headers, body })
      .then(async (res) => (await res.arrayBuffer(), res.status))
      .catch(() => 0);
    if (status === 200) count++;
    // Refused (argon2 queue full, 503): back off as a client honouring Retry-After would, a little.
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
await Promise.all(Array.from({ length: concurrency }, loop));
