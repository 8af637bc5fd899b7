// `npm run bench`: the gateway against a bare pass-through in the same run, each pinned to one core, load from
// wrk on the other core. Prints requests/s, p50, p99 and the ratio to the pass-through. Not a test.
// Usage: npm run bench [-- [--profile] scenario ...]
//   scenarios: core, complete, routes, ratelimit, auth, plugins, tracing, logins, workers, startup (start-up, idle memory, idle clients,
//   1M buckets);
//   default: all. --profile writes V8 CPU profiles of every run to bench/results/profiles/<run>/ (open them in
//   Chrome DevTools > Performance, or speedscope).
//   npm run bench -- tls: HTTPS/1.1, h2 and TLS handshakes (bench/tls.ts, run on its own).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLoginLoad } from './login-load.js';
import { pairedProbe, startBurner } from './paired-logins.js';
import { BARE_SERVER, measureSettledRss, measureStartup, startupCases } from './startup.js';
import { measureIdleClients } from './idle-clients.js';
import { ROOT, GATEWAY_CPU, LOAD_CPU, REDIS_URL, cpuTimeUs, startPinned, stop, gatewayConfig, OFF, UNLIMITED, COMPLETE, accessToken, median, type Started, ensureCurrentBuild, runProbe } from './harness.js';

const DURATION = process.env.BENCH_DURATION ?? '10s';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '5');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? '64');
/** Fixed request rate of the latency probe (well under capacity: latency at a load, not a saturated queue). */
const PROBE_RATE = Number(process.env.BENCH_PROBE_RATE ?? '1000');
const PROBE_SECONDS = Number(process.env.BENCH_PROBE_SECONDS ?? '10');
/** Steady login rate of the latency-under-logins scenario. */
const LOGIN_RATE = Number(process.env.BENCH_LOGIN_RATE ?? '10');
/** Logins in flight in the flood scenario: above `argon2.queue_limit` (256), so the queue bound is exercised. */
const FLOOD_CONCURRENCY = Number(process.env.BENCH_FLOOD_CONCURRENCY ?? '512');
/** Length of goal 4's paired probe (logins switched on and off every 2 s), seconds. */
const PAIRED_SECONDS = Number(process.env.BENCH_PAIRED_SECONDS ?? '40');

interface Result {
  name: string;
  /** requests/s over the pass-through's in the same round: min and max over the rounds (set by medians()). */
  spread?: readonly [number, number];
  rps: number;
  p50: number;
  p99: number;
  /** CPU time the proxy under test spent per request (user + system), in microseconds; NaN when not measured. */
  cpuUs: number;
}

/** One row of the closing table: a goal of the performance issue, its target, and what this run measured. */
interface GoalRow {
  readonly goal: string;
  readonly target: string;
  readonly measured: string;
  /** Over the rounds or spawns (empty when measured once). */
  readonly spread: string;
  /** undefined: reported, no target. */
  readonly met: boolean | undefined;
}
const goals: GoalRow[] = [];
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** Prints every goal's figure of this run in one table (the scenarios that ran). */
function printGoals(): void {
  if (goals.length === 0) return;
  const head = ['goal', 'target', 'measured', 'spread', 'met'];
  const rows = goals.map((g) => [g.goal, g.target, g.measured, g.spread, g.met === undefined ? '' : g.met ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\nGoals (this run; ratios against the pass-through of the same round):\n${line(head)}\n`);
  process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

/** The process whose CPU time wrk runs are charged to (the proxy under test), set while one runs. */
let measuredPid: number | undefined;
/** --profile: every gateway run writes a CPU profile here. */
const PROFILE_DIR = process.argv.includes('--profile') ? join(ROOT, 'bench/results/profiles') : undefined;
let round = 0;
/** --profile: the directory of the process started last, whose wrk run writes measured.json beside its profile. */
let profiledDir: string | undefined;

/** Milliseconds from a wrk latency figure such as 812.00us, 1.25ms or 1.02s. */
function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** Runs wrk pinned to the load core against `url`. */
function wrk(name: string, url: string, headers: string[] = [], duration = DURATION): Result {
  const pid = measuredPid;
  const cpuBefore = pid === undefined ? 0 : cpuTimeUs(pid);
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${duration}`, '--latency'];
  for (const h of headers) args.push('-H', h);
  const out = spawnSync('taskset', [...args, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out.stdout)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out.stdout)?.[1] ?? '');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out.stdout)?.[1];
  if (non2xx) process.stderr.write(`  note: ${name}: ${non2xx} non-2xx responses\n`);
  const requests = Number(/(\d+) requests in/.exec(out.stdout)?.[1]);
  const cpuUs = pid === undefined ? Number.NaN : (cpuTimeUs(pid) - cpuBefore) / requests;
  if (PROFILE_DIR !== undefined && profiledDir !== undefined) {
    process.stderr.write(`  profiled: ${name}: ${requests} requests (warm-up included in the profile)\n`);
    // What bench/profile-split.ts scales the profile by: the run's CPU time a request, read from /proc (a profile
    // holds the warm-up too, so its own time over the requests would overstate it).
    mkdirSync(profiledDir, { recursive: true });
    writeFileSync(join(profiledDir, 'measured.json'), `${JSON.stringify({ name, requests, cpuUs })}\n`);
  }
  return { name, rps, p50, p99, cpuUs };
}

/** Runs the open-loop latency probe pinned to the load core; p50/p99 in ms at a fixed request rate. */
function probe(name: string, url: string, header: string | undefined, rate = PROBE_RATE, seconds = PROBE_SECONDS): Result {
  const pid = measuredPid;
  const cpuBefore = pid === undefined ? 0 : cpuTimeUs(pid);
  const r = runProbe(url, rate, seconds, header);
  if (r.errors > 0) process.stderr.write(`  note: ${name}: ${r.errors} failed requests\n`);
  const cpuUs = pid === undefined ? Number.NaN : (cpuTimeUs(pid) - cpuBefore) / r.count;
  return { name, rps: r.count / seconds, p50: r.p50, p99: r.p99, cpuUs };
}

/** A gateway config for the bench backends with the given middleware. */
async function withGateway<T>(
  ports: number[],
  middleware: Record<string, unknown>,
  redisUrl: string,
  fn: (url: string) => Promise<T>,
  env: NodeJS.ProcessEnv = {},
  options: { name?: string; cpu?: string; server?: Record<string, unknown> } = {},
): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-data-'));
  const config = gatewayConfig(ports, middleware, redisUrl, options.server);
  const gw = await startPinned(
    options.cpu ?? GATEWAY_CPU,
    [...profileArgs(options.name ?? 'gateway'), 'bin/portcullis.js', 'start', '--config', config],
    { PORTCULLIS_DATA_DIR: dataDir, ...env },
    '"Gateway Started"',
  );
  try {
    measuredPid = gw.child.pid;
    return await fn(`http://127.0.0.1:${gw.line.port as number}`);
  } finally {
    measuredPid = undefined;
    await stop(gw);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** --profile: the node options that write a CPU profile of the process about to start. */
function profileArgs(name: string): string[] {
  if (PROFILE_DIR === undefined) return [];
  const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
  // A directory per run, files named by Node: a tsx loader thread writes a profile of its own, the main thread's
  // is the largest file.
  profiledDir = join(PROFILE_DIR, `${slug}-round${round + 1}`);
  return ['--cpu-prof', `--cpu-prof-dir=${profiledDir}`];
}

async function passthrough(ports: number[]): Promise<Result> {
  const p = await startPinned(GATEWAY_CPU, [...profileArgs('pass-through'), '--import', 'tsx', 'bench/passthrough.ts'], { BACKEND_PORTS: ports.join(',') }, '"Gateway Started"');
  try {
    const url = `http://127.0.0.1:${p.line.port as number}/`;
    measuredPid = p.child.pid;
    wrk('warm-up', url, [], '3s');
    return wrk('bare pass-through (node:http + undici)', url);
  } finally {
    measuredPid = undefined;
    await stop(p);
  }
}

async function measure(
  ports: number[],
  name: string,
  middleware: Record<string, unknown>,
  redisUrl = '',
  env: NodeJS.ProcessEnv = {},
): Promise<Result> {
  return withGateway(
    ports,
    middleware,
    redisUrl,
    async (base) => {
      wrk('warm-up', `${base}/`, [], '3s');
      return wrk(name, `${base}/`);
    },
    env,
    { name },
  );
}

/** A scenario whose requests carry a valid access token (registered through the gateway first). */
function measureWithToken(ports: number[], name: string, middleware: Record<string, unknown>, redisUrl: string): Promise<Result> {
  return withGateway(
    ports,
    middleware,
    redisUrl,
    async (base) => {
      const auth = [`Authorization: Bearer ${await accessToken(base)}`];
      wrk('warm-up', `${base}/`, auth, '3s');
      return wrk(name, `${base}/`, auth);
    },
    {},
    { name },
  );
}

function print(results: Result[], baseline: Result): void {
  const rows = results.map((r) => [
    r.name,
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    pct(r.rps / baseline.rps),
    r.spread ? `${pct(r.spread[0])}–${pct(r.spread[1])}` : '',
    `${(r.p99 / baseline.p99).toFixed(2)}x`,
    r.cpuUs.toFixed(1),
    pct(baseline.cpuUs / r.cpuUs),
  ]);
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs pass-through', 'spread over rounds', 'p99 vs pass-through', 'CPU µs/req', 'per-core vs pass-through'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(
    '\nspread: the lowest and highest ratio of the rounds, each against the pass-through of the same round.\n' +
      'per-core vs pass-through: the pass-through\'s CPU time per request over this one\'s, i.e. the requests/s one core\n' +
      'would serve relative to the pass-through; it does not depend on how busy the load core was.\n',
  );
}

/** Goal 1's rows: the complete configuration against the pass-through, requests/s and p99. */
function throughputGoals(results: Result[]): void {
  const base = results[0]!;
  for (const r of results) {
    if (!r.name.startsWith('complete')) continue;
    const redis = r.name.includes('redis');
    const label = redis ? '1. complete config, Redis limiter' : '1. complete config (JWT, memory limiter, access log file, metrics, 20 routes)';
    const spread = r.spread ? `${pct(r.spread[0])}–${pct(r.spread[1])}` : '';
    goals.push({ goal: `${label}: req/s`, target: redis ? 'reported' : '≥ 90 % of pass-through', measured: pct(r.rps / base.rps), spread, met: redis ? undefined : r.rps / base.rps >= 0.9 });
    goals.push({ goal: `${label}: CPU per request`, target: 'reported', measured: `${pct(base.cpuUs / r.cpuUs)} per core`, spread: '', met: undefined });
    const p99 = r.p99 / base.p99;
    goals.push({ goal: `${label}: p99`, target: redis ? 'reported' : '≤ 1.2× pass-through', measured: `${p99.toFixed(2)}×`, spread: '', met: redis ? undefined : p99 <= 1.2 });
  }
}

/**
 * The median of each scenario over the rounds (by requests/s; its p50/p99 travel with it), and the spread of its
 * ratio to the pass-through (scenario 0) of the same round.
 */
function medians(rounds: Result[][]): Result[] {
  return rounds[0]!.map((_, i) => {
    const runs = rounds.map((r) => r[i]!).sort((x, y) => x.rps - y.rps);
    const ratios = rounds.map((r) => r[i]!.rps / r[0]!.rps);
    return {
      ...runs[Math.floor(runs.length / 2)]!,
      cpuUs: median(rounds.map((r) => r[i]!.cpuUs)),
      spread: [Math.min(...ratios), Math.max(...ratios)] as const,
    };
  });
}

/** Offered load of the workers scenario's fixed-rate runs (below what one worker serves on this machine). */
const WORKERS_RATE = Number(process.env.BENCH_WORKERS_RATE ?? '3000');

/**
 * Goal 5: CPU time per proxied request with 1 and 2 workers (Redis limiter), gateway free to use both cores, from
 * /proc (the primary and its workers). Measured twice: saturated by wrk, and at a fixed offered rate (the open-loop
 * probe at BENCH_WORKERS_RATE). The fixed rate is the fair comparison: a saturated process gathers many requests per
 * event-loop turn, socket write and Redis pipeline flush, while each of two workers sharing the same load is less
 * busy and gathers fewer, so saturation charges the second worker for batching it no longer gets. The same holds, less
 * so, at a fixed rate (each of two workers serves half of it): a control runs one worker at half the rate, the load
 * each of two workers carries, to tell what a second process costs from what a lighter load costs any process.
 */
async function workersScenario(ports: number[]): Promise<void> {
  const counts = [1, 2];
  const saturated = new Map<number, Result[]>(counts.map((n) => [n, []]));
  const fixed = new Map<number, Result[]>(counts.map((n) => [n, []]));
  const halfRate: Result[] = [];
  for (round = 0; round < ROUNDS; round++) {
    for (const workers of counts) {
      const name = `${workers} worker${workers > 1 ? 's' : ''}, rate limit (redis)`;
      await withGateway(
        ports,
        { ...OFF, rate_limit: UNLIMITED },
        REDIS_URL,
        async (base) => {
          wrk('warm-up', `${base}/`, [], '3s');
          saturated.get(workers)!.push(wrk(name, `${base}/`));
          fixed.get(workers)!.push(probe(`${name}, ${WORKERS_RATE}/s`, `${base}/`, undefined, WORKERS_RATE, PROBE_SECONDS));
          if (workers === 1) halfRate.push(probe(`${name}, ${WORKERS_RATE / 2}/s`, `${base}/`, undefined, WORKERS_RATE / 2, PROBE_SECONDS));
        },
        {},
        { name, cpu: '0,1', server: { workers } },
      );
    }
  }
  process.stdout.write('\nserver.workers (Redis store; gateway on both cores, wrk and the probe share them):\n');
  const perCpuSecond = (runs: Result[]) => 1e6 / median(runs.map((r) => r.cpuUs));
  for (const [label, runs] of [['saturated (wrk)', saturated], [`fixed rate ${WORKERS_RATE}/s`, fixed]] as const) {
    const one = perCpuSecond(runs.get(1)!);
    const two = perCpuSecond(runs.get(2)!);
    for (const workers of counts) {
      const r = runs.get(workers)!;
      process.stdout.write(
        `  ${label}, ${workers} worker(s): ${median(r.map((x) => x.cpuUs)).toFixed(1)} CPU µs/req = ${perCpuSecond(r).toFixed(0)} req per CPU-second, ` +
          `${median(r.map((x) => x.rps)).toFixed(0)} req/s, p99 ${median(r.map((x) => x.p99)).toFixed(2)} ms\n`,
      );
    }
    const ratios = runs.get(1)!.map((x, i) => x.cpuUs / runs.get(2)![i]!.cpuUs);
    const isGoal = label !== 'saturated (wrk)';
    goals.push({
      goal: `5. requests per CPU-second, 2 workers vs 1 (Redis limiter), ${label}`,
      target: isGoal ? '≥ 95 % (CPU per request does not grow)' : 'reported',
      measured: `${two.toFixed(0)} vs ${one.toFixed(0)} = ${pct(two / one)}`,
      spread: `${pct(Math.min(...ratios))}–${pct(Math.max(...ratios))}`,
      met: isGoal ? two / one >= 0.95 : undefined,
    });
  }
  // The control: one worker at each worker's share of the fixed rate, against two workers at the whole of it.
  const half = perCpuSecond(halfRate);
  const two = perCpuSecond(fixed.get(2)!);
  process.stdout.write(
    `  control, 1 worker at ${WORKERS_RATE / 2}/s (each of 2 workers' share): ${median(halfRate.map((x) => x.cpuUs)).toFixed(1)} CPU µs/req = ` +
      `${half.toFixed(0)} req per CPU-second, p99 ${median(halfRate.map((x) => x.p99)).toFixed(2)} ms\n`,
  );
  const ratios = halfRate.map((x, i) => x.cpuUs / fixed.get(2)![i]!.cpuUs);
  goals.push({
    goal: `5. control: 2 workers at ${WORKERS_RATE}/s vs 1 worker at ${WORKERS_RATE / 2}/s (the same load per process)`,
    target: 'reported',
    measured: `${two.toFixed(0)} vs ${half.toFixed(0)} = ${pct(two / half)}`,
    spread: `${pct(Math.min(...ratios))}–${pct(Math.max(...ratios))}`,
    met: undefined,
  });
}

/** Goals 2 and 3: start-up time, idle memory, idle keep-alive clients, and the memory store's 1M buckets. */
async function startupScenario(): Promise<void> {
  const { cases, cleanup } = startupCases();
  try {
    const runs = Number(process.env.BENCH_STARTUP_RUNS ?? '10');
    process.stdout.write(`\nstart-up: node bin/portcullis.js start → first 200 on /health, median of ${runs} spawns (range):\n`);
    const rows = await measureStartup(cases, runs);
    const settled = await measureSettledRss(cases);
    for (const [i, r] of rows.entries()) {
      const range = (x: readonly [number, number], digits: number) => x.map((v) => v.toFixed(digits)).join('–');
      const shipped = r.name.startsWith('shipped');
      const idle = settled[i]!;
      if (r.name === BARE_SERVER) {
        goals.push({ goal: `3. start-up of ${BARE_SERVER} (this machine's floor)`, target: 'reported', measured: `${r.startMs.toFixed(0)} ms, ${r.idleRssMb.toFixed(1)} MB`, spread: range(r.startRange, 0), met: undefined });
        process.stdout.write(`  ${r.name.padEnd(40)} ${r.startMs.toFixed(0)} ms (${range(r.startRange, 0)}); RSS after 1 s ${r.idleRssMb.toFixed(1)} MB, after 20 s idle ${idle.rssMb.toFixed(1)} MB\n`);
        continue;
      }
      goals.push({ goal: `2. idle RSS (1 s after start-up), ${r.name}`, target: '≤ 60 MB', measured: `${r.idleRssMb.toFixed(1)} MB`, spread: range(r.rssRange, 1), met: r.idleRssMb <= 60 });
      // Reported, not judged: V8's memory reducer may or may not have run by then (see measureSettledRss).
      goals.push({ goal: `2. RSS left idle for 20 s, ${r.name}`, target: 'reported', measured: `${idle.rssMb.toFixed(1)} MB`, spread: range(idle.range, 1), met: undefined });
      goals.push({
        goal: `3. start-up to the first /health 200, ${r.name}`,
        target: shipped ? 'reported' : '≤ 300 ms',
        measured: `${r.startMs.toFixed(0)} ms (CPU ${r.cpuMs.toFixed(0)} ms)`,
        spread: range(r.startRange, 0),
        met: shipped ? undefined : r.startMs <= 300,
      });
      process.stdout.write(
        `  ${r.name.padEnd(40)} ${r.startMs.toFixed(0)} ms (${range(r.startRange, 0)}), CPU ${r.cpuMs.toFixed(0)} ms;` +
          ` RSS after 1 s ${r.idleRssMb.toFixed(1)} MB (${range(r.rssRange, 1)}), after 20 s idle ${idle.rssMb.toFixed(1)} MB (${range(idle.range, 1)})\n`,
      );
    }
  } finally {
    cleanup();
  }
  const idle = await measureIdleClients(10_000);
  const added = idle.afterMb - idle.beforeMb;
  goals.push({ goal: '2. RSS added by 10,000 idle keep-alive clients to a warm gateway', target: '≤ 30 MB', measured: `${added.toFixed(1)} MB`, spread: '', met: added <= 30 });
  process.stdout.write(
    `  10,000 idle keep-alive clients on a warm gateway: +${added.toFixed(1)} MB RSS (${Math.round(idle.perClientBytes)} B each)\n`,
  );
  const limiter = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/limiter.ts', 'heap'], { cwd: ROOT, encoding: 'utf8' });
  const heap = limiter.stdout.split('\n').filter((l) => l.includes('heap'));
  const filled = /before \/ after 1M\s+([\d.]+) MB \/ ([\d.]+) MB/.exec(limiter.stdout);
  if (filled) {
    // What the store holds: the heap and typed arrays it added (the process around it is not the store's).
    const mb = Number(filled[2]) - Number(filled[1]);
    goals.push({ goal: '2. memory store holding 1M clients (heap + typed arrays added)', target: '≤ 100 MB', measured: `${mb.toFixed(1)} MB`, spread: '', met: mb <= 100 });
  }
  process.stdout.write(`  memory store, 1M clients:\n${heap.map((l) => `    ${l.trim()}`).join('\n')}\n`);
}

async function main(): Promise<void> {
  ensureCurrentBuild();
  const wanted = new Set(process.argv.slice(2).filter((a) => !a.startsWith('--')));
  if (wanted.has('tls')) {
    await import('./tls.js');
    return;
  }
  const run = (s: string) => wanted.size === 0 || wanted.has(s);
  process.stdout.write(
    `wrk -t1 -c${CONNECTIONS} -d${DURATION}, median of ${ROUNDS} rounds (scenarios interleaved); ` +
      `gateway on cpu ${GATEWAY_CPU}, wrk and backends on cpu ${LOAD_CPU}\n`,
  );
  if (PROFILE_DIR !== undefined) process.stdout.write(`CPU profiles of the gateway runs: ${PROFILE_DIR}\n`);
  const backends = await startPinned(LOAD_CPU, ['--import', 'tsx', 'bench/backends.ts'], {}, '"Backends Started"');
  const ports = backends.line.ports as number[];
  const AUTH_ON = { auth: { enabled: true }, rate_limit: { enabled: false } };
  const scenarios: Array<() => Promise<Result>> = [() => passthrough(ports)];
  if (run('core')) {
    scenarios.push(() => measure(ports, 'gateway (auth off, rate limit off)', OFF));
    // The same with the three per-request log lines off: shows what the access log costs.
    scenarios.push(() => measure(ports, 'gateway, logging.access_log: false', { ...OFF, access_log: false }));
  }
  if (run('complete')) {
    // Goal 1: what a production gateway runs, with the memory and then the Redis limiter.
    scenarios.push(() => measureWithToken(ports, 'complete: JWT + rate limit (memory) + access log file + metrics + 20 routes', COMPLETE, ''));
    scenarios.push(() => measureWithToken(ports, 'complete, rate limit (redis)', COMPLETE, REDIS_URL));
  }
  if (run('routes')) {
    scenarios.push(() => measure(ports, 'gateway, 1 route', { ...OFF, routes: 1 }));
    scenarios.push(() => measure(ports, 'gateway, 1,000 routes', { ...OFF, routes: 1000 }));
  }
  if (run('ratelimit')) {
    scenarios.push(() => measure(ports, 'gateway + rate limit (memory)', { ...OFF, rate_limit: UNLIMITED }));
    scenarios.push(() => measure(ports, 'gateway + rate limit (redis)', { ...OFF, rate_limit: UNLIMITED }, REDIS_URL));
  }
  if (run('plugins')) {
    // The per-request cost of the plugin chain: the same gateway with 0 and with 3 plugins whose hooks do nothing.
    scenarios.push(() => measure(ports, 'gateway, 0 plugins', OFF));
    scenarios.push(() => measure(ports, 'gateway + 3 no-op plugins (4 hooks each)', { ...OFF, plugins: 3 }));
  }
  if (run('auth')) scenarios.push(() => measureWithToken(ports, 'gateway + JWT verification', AUTH_ON, ''));
  // Last in each round: the trace sink on the load core is still parsing spans for a while after these runs.
  let sink: Started | undefined;
  if (run('tracing')) {
    // A collector stand-in on the load core: export costs the gateway what it would cost against a real collector.
    sink = await startPinned(LOAD_CPU, ['--import', 'tsx', 'bench/otlp-sink.ts'], {}, '"Sink Started"');
    const endpoint = `http://127.0.0.1:${sink.line.port as number}/v1/traces`;
    scenarios.push(() => measure(ports, 'tracing off (no otlp_endpoint)', OFF));
    for (const ratio of [0.01, 1]) {
      scenarios.push(() => measure(ports, `tracing on, sample_ratio ${ratio}`, { ...OFF, tracing: { otlp_endpoint: endpoint, sample_ratio: ratio } }));
    }
  }
  try {
    if (scenarios.length > 1) {
      const rounds: Result[][] = [];
      for (round = 0; round < ROUNDS; round++) {
        const results: Result[] = [];
        for (const scenario of scenarios) results.push(await scenario());
        rounds.push(results);
        process.stderr.write(`  round ${round + 1}: ${results.map((r) => r.rps.toFixed(0)).join(' / ')} req/s\n`);
      }
      const results = medians(rounds);
      print(results, results[0]!);
      throughputGoals(results);
    }
    // Logins flat out, one user from 127.0.0.1: far past the login limits (on with auth), which would answer 429
    // instead of hashing; this scenario measures argon2's cost, so they are off.
    if (run('logins')) await loginsScenario(ports, { ...AUTH_ON, rate_limit: { enabled: false, auth: { enabled: false } } });
    if (run('workers')) await workersScenario(ports);
    if (run('startup')) await startupScenario();
    printGoals();
  } finally {
    await stop(backends);
    if (sink) await stop(sink);
  }
}

/**
 * Goal 4: proxied latency at a fixed rate, without and then with logins on the gateway's own core; once with
 * argon2 in its low-priority child process (the default) and once in the gateway process, to show the difference.
 */
async function loginsScenario(ports: number[], authOn: Record<string, unknown>): Promise<void> {
  const engines: Array<[string, NodeJS.ProcessEnv]> = [
    ['argon2 in a nice-19 child process (default)', {}],
    ['argon2 in the gateway process (PORTCULLIS_HASH_IN_PROCESS=1)', { PORTCULLIS_HASH_IN_PROCESS: '1' }],
  ];
  for (const [engine, env] of engines) {
    await withGateway(
      ports,
      authOn,
      '',
      async (base) => {
        const header = `Authorization: Bearer ${await accessToken(base)}`;
        probe('warm-up', `${base}/`, header, PROBE_RATE, 3);
        const quiet = probe(`proxied GET at ${PROBE_RATE}/s, no logins`, `${base}/`, header);
        process.stdout.write(`\nopen-loop latency (gateway with JWT verification), ${engine}:\n`);
        const show = (r: Result): void => {
          process.stdout.write(`  ${r.name.padEnd(52)} p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms\n`);
        };
        show(quiet);
        // A steady stream of logins (argon2id ~20 ms of CPU each), then as many as four loops can push through,
        // then a flood with more logins in flight than the argon2 queue holds (the excess gets 503 at once).
        for (const [rate, concurrency] of [[LOGIN_RATE, 4], [0, 4], [0, FLOOD_CONCURRENCY]] as const) {
          const load = startLoginLoad(base, LOAD_CPU, rate, concurrency);
          await load.ready;
          const label = rate > 0 ? `${rate} logins/s` : concurrency > 4 ? `login flood, ${concurrency} in flight` : 'logins flat out';
          const busy = probe(`proxied GET at ${PROBE_RATE}/s, ${label}`, `${base}/`, header);
          const achieved = await load.stop();
          show(busy);
          process.stdout.write(`    logins achieved ${achieved.toFixed(1)}/s; p99 ratio to no logins: ${(busy.p99 / quiet.p99).toFixed(2)}x\n`);
        }
        const inChild = Object.keys(env).length === 0;
        if (inChild) {
          // The controls, once: the same paired probe with a SCHED_IDLE burner on the gateway's core instead.
          for (const kind of ['cpu', 'memory'] as const) {
            const burner = startBurner(GATEWAY_CPU, kind);
            try {
              const control = await pairedProbe(`${base}/`, header, burner, { cpu: LOAD_CPU, rate: PROBE_RATE, seconds: PAIRED_SECONDS });
              const ratio = median(control.ratios);
              const spread = `${control.ratios[0]?.toFixed(2)}–${control.ratios.at(-1)?.toFixed(2)}`;
              process.stdout.write(
                `  control, a SCHED_IDLE ${kind} burner on the gateway's core on and off every 2 s for ${PAIRED_SECONDS} s:\n` +
                  `    p99 of each on-window over its off-window's: median ${ratio.toFixed(2)}x (${spread}, ${control.ratios.length} cycles)\n`,
              );
              goals.push({
                goal: `4. control: proxied p99, a SCHED_IDLE ${kind} burner on the gateway's core vs none (paired windows)`,
                target: 'reported',
                measured: `${ratio.toFixed(2)}× (median of ${control.ratios.length} cycles)`,
                spread,
                met: undefined,
              });
            } finally {
              burner.stop();
            }
          }
        }
        // The verdict: logins flat out switched on and off every 2 s during one probe (bench/paired-logins.ts).
        const load = startLoginLoad(base, LOAD_CPU, 0, 4);
        await load.ready;
        const loadStarted = performance.now();
        const paired = await pairedProbe(`${base}/`, header, load, { cpu: LOAD_CPU, rate: PROBE_RATE, seconds: PAIRED_SECONDS });
        const lifetime = (performance.now() - loadStarted) / 1000;
        const achieved = ((await load.stop()) * lifetime) / paired.onSeconds;
        const ratio = median(paired.ratios);
        const spread = `${paired.ratios[0]?.toFixed(2)}–${paired.ratios.at(-1)?.toFixed(2)}`;
        process.stdout.write(
          `  paired, logins flat out on and off every 2 s for ${PAIRED_SECONDS} s (about ${achieved.toFixed(1)} logins/s while on):\n` +
            `    p99 of each on-window over its off-window's: median ${ratio.toFixed(2)}x (${spread}, ${paired.ratios.length} cycles)\n` +
            `    pooled: p99 ${paired.on.p99.toFixed(2)} ms with logins (${paired.on.count} requests), ${paired.off.p99.toFixed(2)} ms ` +
            `without (${paired.off.count}); p50 ${paired.on.p50.toFixed(2)} vs ${paired.off.p50.toFixed(2)} ms\n`,
        );
        goals.push({
          goal: `4. proxied p99, logins flat out vs none (paired windows), ${inChild ? 'argon2 in its nice-19 process' : 'argon2 in the gateway process'}`,
          target: inChild ? '≤ 1.5×' : 'reported',
          measured: `${ratio.toFixed(2)}× (median of ${paired.ratios.length} cycles)`,
          spread,
          met: inChild ? ratio <= 1.5 : undefined,
        });
      },
      env,
      // Every client here is 127.0.0.1: the flood's 512 connections and the probe's 64 would pass the default
      // per-address cap (256), and the probe would measure 429s.
      { name: `logins ${engine}`, server: { max_connections_per_client: 4096 } },
    );
  }
}

await main();
