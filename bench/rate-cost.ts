// CPU time per request against the offered rate, for the bare pass-through and the gateway alike: what a lighter
// load costs any Node process here, the gateway or not (goal 5's control). Both pinned to the gateway core, the
// open-loop probe (bench/latency-probe.ts) and the backends on the load core; at each rate the two run one after
// the other, rounds interleaved, medians printed. On this VM each request that arrives alone pays its own wake-ups
// (epoll, a write that wakes the other core), so the cost per request falls as the rate rises. Not a test.
// Run: node --import tsx bench/rate-cost.ts [--rounds 3] [--seconds 6] [--rates 750,1500,3000,6000]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_CPU, LOAD_CPU, OFF, cpuTimeUs, gatewayConfig, median, runProbe, startPinned, stop, type Started, ensureCurrentBuild } from './harness.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    rates: { type: 'string', default: '750,1500,3000,6000' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const RATES = values.rates.split(',').map(Number);

/** Runs the open-loop probe at `rate` for SECONDS; the number of requests it completed. */
function probe(url: string, rate: number): number {
  const { count } = runProbe(url, rate, SECONDS);
  if (!(count > 0)) throw new Error(`latency probe against ${url} completed no request`);
  return count;
}

async function main(): Promise<void> {
  ensureCurrentBuild();
  const backends = await startPinned(LOAD_CPU, ['--import', 'tsx', 'bench/backends.ts'], {}, '"Backends Started"');
  const ports = backends.line.ports as number[];
  const started: Started[] = [backends];
  try {
    const bare = await startPinned(GATEWAY_CPU, ['--import', 'tsx', 'bench/passthrough.ts'], { BACKEND_PORTS: ports.join(',') }, '"Gateway Started"');
    started.push(bare);
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-rate-cost-'));
    const gateway = await startPinned(GATEWAY_CPU, ['bin/portcullis.js', 'start', '--config', gatewayConfig(ports, OFF)], { PORTCULLIS_DATA_DIR: dataDir }, '"Gateway Started"');
    started.push(gateway);
    const targets = [
      { name: 'bare pass-through', process: bare },
      { name: 'gateway (core)', process: gateway },
    ].map((t) => ({ ...t, url: `http://127.0.0.1:${t.process.line.port as number}/`, cpuUs: new Map<number, number[]>() }));
    for (const t of targets) probe(t.url, RATES[RATES.length - 1]!); // warm-up: JIT, pools
    for (let round = 0; round < ROUNDS; round++) {
      for (const rate of RATES) {
        for (const t of targets) {
          const before = cpuTimeUs(t.process.child.pid!);
          const requests = probe(t.url, rate);
          const us = (cpuTimeUs(t.process.child.pid!) - before) / requests;
          t.cpuUs.set(rate, [...(t.cpuUs.get(rate) ?? []), us]);
          process.stderr.write(`  round ${round + 1}, ${rate}/s, ${t.name}: ${us.toFixed(1)} CPU µs/req\n`);
        }
      }
    }
    const [bareT, gatewayT] = targets as [(typeof targets)[0], (typeof targets)[0]];
    const top = RATES[RATES.length - 1]!;
    process.stdout.write(`\nCPU µs per request, median of ${ROUNDS} rounds of ${SECONDS} s (× the cost at ${top}/s)\n`);
    process.stdout.write(`${'offered rate'.padEnd(14)}${'bare pass-through'.padStart(22)}${'gateway (core)'.padStart(22)}${'gateway / bare'.padStart(16)}\n`);
    const topBare = median(bareT.cpuUs.get(top)!);
    const topGateway = median(gatewayT.cpuUs.get(top)!);
    for (const rate of RATES) {
      const b = median(bareT.cpuUs.get(rate)!);
      const g = median(gatewayT.cpuUs.get(rate)!);
      const cell = (us: number, atTop: number) => `${us.toFixed(1)} (${(us / atTop).toFixed(2)}×)`;
      process.stdout.write(`${`${rate}/s`.padEnd(14)}${cell(b, topBare).padStart(22)}${cell(g, topGateway).padStart(22)}${(g / b).toFixed(2).padStart(16)}\n`);
    }
  } finally {
    await Promise.all(started.map(stop));
  }
}

await main();
