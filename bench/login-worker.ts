// Child process of login-load.ts: registers one user, then logs in again and again with N requests in flight.
const [base, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg ?? '4');
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
async function loop(): Promise<void> {
  while (running) {
    const res = await fetch(`${base}/auth/login`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    if (res.status === 200) count++;
  }
}
await Promise.all(Array.from({ length: concurrency }, loop));
