// `npm run bench`: the gateway against a bare pass-through in the same run, each pinned to one core, load from
// wrk on the other core. Prints requests/s, p50, p99 and the ratio to the pass-through. Not a test.
// Usage: npm run bench [-- [--profile] scenario ...]
//   scenarios: core, routes, ratelimit, auth, plugins, tracing, logins, workers, startup (start-up, idle memory, idle clients,
//   1M buckets);
//   default: all. --profile writes a V8 CPU profile of every gateway run to bench/results/profiles/ (open it in
//   Chrome DevTools > Performance, or speedscope).
//   npm run bench -- tls: HTTPS/1.1, h2 and TLS handshakes (bench/tls.ts, run on its own).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startLoginLoad } from './login-load.js';
import { measureStartup, startupCases } from './startup.js';
import { measureIdleClients } from './idle-clients.js';

const ROOT = new URL('../', import.meta.url).pathname;
const DURATION = process.env.BENCH_DURATION ?? '10s';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '5');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? '64');
const GATEWAY_CPU = process.env.BENCH_GATEWAY_CPU ?? '0';
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Fixed request rate of the latency probe (well under capacity: latency at a load, not a saturated queue). */
const PROBE_RATE = Number(process.env.BENCH_PROBE_RATE ?? '1000');
const PROBE_SECONDS = Number(process.env.BENCH_PROBE_SECONDS ?? '10');
/** Steady login rate of the latency-under-logins scenario. */
const LOGIN_RATE = Number(process.env.BENCH_LOGIN_RATE ?? '10');
/** Logins in flight in the flood scenario: above `argon2.queue_limit` (256), so the queue bound is exercised. */
const FLOOD_CONCURRENCY = Number(process.env.BENCH_FLOOD_CONCURRENCY ?? '512');

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

/** The process whose CPU time wrk runs are charged to (the proxy under test), set while one runs. */
let measuredPid: number | undefined;
/** --profile: every gateway run writes a CPU profile here. */
const PROFILE_DIR = process.argv.includes('--profile') ? join(ROOT, 'bench/results/profiles') : undefined;
let round = 0;

/**
 * User + system CPU time of `pid` and of its child processes (cluster workers, the password-hashing process) in
 * microseconds, from /proc (clock ticks of 10 ms).
 */
function cpuTimeUs(pid: number): number {
  let total = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    total = (Number(fields[11]) + Number(fields[12])) * 10_000;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean)) {
        total += cpuTimeUs(Number(child));
      }
    }
  } catch {
    // the process exited meanwhile
  }
  return total;
}

interface Started {
  child: ChildProcess;
  line: Record<string, unknown>;
}

/**
 * Spawns a process pinned to `cpu` and waits for its JSON start line whose msg is `ready`. Its stdout goes to a
 * file, as a production gateway's logs would, so no unpinned reader competes with it for its core.
 */
async function startPinned(cpu: string, args: string[], env: NodeJS.ProcessEnv, ready: string): Promise<Started> {
  const logFile = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-log-')), 'stdout.log');
  const out = openSync(logFile, 'w');
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  let exited = false;
  child.once('exit', () => (exited = true));
  // Generous: a loaded machine can take many seconds to start a cluster of workers.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited) {
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes(ready));
    if (line) return { child, line: JSON.parse(line) as Record<string, unknown> };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${args.join(' ')} did not start: ${readFileSync(logFile, 'utf8').slice(-500)}`);
}

function stop(p: Started): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) return resolve();
    p.child.once('exit', () => resolve());
    p.child.kill('SIGTERM');
  });
}

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
  return { name, rps, p50, p99, cpuUs };
}

/** Runs the open-loop latency probe pinned to the load core; p50/p99 in ms at a fixed request rate. */
function probe(name: string, url: string, header: string | undefined, rate = PROBE_RATE, seconds = PROBE_SECONDS): Result {
  const args = ['-c', LOAD_CPU, process.execPath, '--import', 'tsx', 'bench/latency-probe.ts', url, String(rate), String(seconds)];
  if (header) args.push(header);
  const out = spawnSync('taskset', args, { cwd: ROOT, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`probe failed: ${out.stderr}`);
  const r = JSON.parse(out.stdout.trim().split('\n').pop()!) as { count: number; errors: number; p50: number; p99: number };
  if (r.errors > 0) process.stderr.write(`  note: ${name}: ${r.errors} failed requests\n`);
  return { name, rps: r.count / seconds, p50: r.p50, p99: r.p99, cpuUs: Number.NaN };
}

/** A gateway config for the bench backends with the given middleware. */
function gatewayConfig(ports: number[], middleware: Record<string, unknown>, redisUrl = '', server: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    stringify({
      server: { listen_host: '127.0.0.1', listen_port: 0, ...server },
      admin: { enabled: false },
      redis: { url: redisUrl },
      jwt: { secret: 'bench-secret-bench-secret-bench-secret-0123' },
      logging: { format: 'json', access_log: middleware.access_log ?? true },
      ...routeTable(ports, middleware.routes as number | undefined),
      middleware: { auth: middleware.auth, rate_limit: middleware.rate_limit, plugins: noopNames(middleware.plugins) },
      plugins: noopNames(middleware.plugins).map((name) => ({ name, module: NOOP_PLUGIN })),
      ...(middleware.tracing ? { tracing: middleware.tracing } : {}),
    }),
  );
  return file;
}

/**
 * The upstream part of a bench config: the seed's load_balancing, or (with `routes: N`) one service behind N routes
 * of distinct hosts and prefixes, where the measured request ("/" on host bench.test) matches the last-compiled
 * catch-all: every other route is in the table but none can win.
 */
function routeTable(ports: number[], routes: number | undefined): Record<string, unknown> {
  const group = {
    strategy: 'round_robin',
    upstreams: ports.map((port, i) => ({ name: `b${i}`, address: '127.0.0.1', port })),
    health_check: { enabled: false },
  };
  if (routes === undefined) return { load_balancing: group };
  const table: Record<string, unknown>[] = [];
  for (let i = 0; i < routes - 1; i++) {
    table.push({
      name: `r${i}`,
      match: i % 2 === 0 ? { hosts: [`svc${i}.example.com`], path_prefix: `/api/v${i % 7}` } : { path_prefix: `/svc${i}/items`, methods: ['GET', 'POST'] },
      service: 'app',
    });
  }
  table.push({ name: 'catch-all', match: { path_prefix: '/' }, service: 'app' });
  return { services: { app: group }, routes: table };
}

const OFF = { auth: { enabled: false }, rate_limit: { enabled: false } };
/** A plugin with four empty hooks; `middleware.plugins: N` in a scenario declares N instances of it. */
const NOOP_PLUGIN = join(ROOT, 'bench/noop-plugin.mjs');
function noopNames(count: unknown): string[] {
  return Array.from({ length: typeof count === 'number' ? count : 0 }, (_, i) => `noop${i + 1}`);
}
/** A limit high enough that no request is refused: measures the limiter's cost, not its rejections. */
const UNLIMITED = { enabled: true, requests_per_minute: 1_000_000_000, burst_size: 1_000_000_000 };

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
  const profile: string[] = [];
  if (PROFILE_DIR !== undefined) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    const slug = (options.name ?? 'gateway').replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
    profile.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${slug}-round${round + 1}.cpuprofile`);
  }
  const gw = await startPinned(
    options.cpu ?? GATEWAY_CPU,
    [...profile, 'bin/portcullis.js', 'start', '--config', config],
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

async function passthrough(ports: number[]): Promise<Result> {
  const p = await startPinned(GATEWAY_CPU, ['--import', 'tsx', 'bench/passthrough.ts'], { BACKEND_PORTS: ports.join(',') }, '"Gateway Started"');
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

/** Registers a user through the gateway and returns an access token. */
async function accessToken(base: string): Promise<string> {
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'SecurePass123!' }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`register failed with ${res.status}`);
  return body.access_token;
}

function print(results: Result[], baseline: Result): void {
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
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

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
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

/** Goal 5: CPU time per proxied request with 1 and 2 workers (Redis limiter), gateway free to use both cores. */
async function workersScenario(ports: number[]): Promise<void> {
  const counts = [1, 2];
  const cpu = new Map<number, number[]>(counts.map((n) => [n, []]));
  const rps = new Map<number, number[]>(counts.map((n) => [n, []]));
  for (round = 0; round < ROUNDS; round++) {
    for (const workers of counts) {
      const name = `${workers} worker${workers > 1 ? 's' : ''}, rate limit (redis)`;
      const r = await withGateway(
        ports,
        { ...OFF, rate_limit: UNLIMITED },
        REDIS_URL,
        async (base) => {
          wrk('warm-up', `${base}/`, [], '3s');
          return wrk(name, `${base}/`);
        },
        {},
        { name, cpu: '0,1', server: { workers } },
      );
      cpu.get(workers)!.push(r.cpuUs);
      rps.get(workers)!.push(r.rps);
    }
  }
  process.stdout.write('\nserver.workers (Redis store; gateway on both cores, so wrk shares them: compare CPU per request):\n');
  for (const workers of counts) {
    const us = median(cpu.get(workers)!);
    const spread = cpu.get(workers)!.map((x) => 1e6 / x);
    process.stdout.write(
      `  ${workers} worker(s): ${us.toFixed(1)} CPU µs/req = ${(1e6 / us).toFixed(0)} req per CPU-second ` +
        `(rounds ${Math.min(...spread).toFixed(0)}–${Math.max(...spread).toFixed(0)}), ${median(rps.get(workers)!).toFixed(0)} req/s\n`,
    );
  }
}

/** Goals 2 and 3: start-up time, idle memory, idle keep-alive clients, and the memory store's 1M buckets. */
async function startupScenario(): Promise<void> {
  const { cases, cleanup } = startupCases();
  try {
    const runs = Number(process.env.BENCH_STARTUP_RUNS ?? '10');
    process.stdout.write(`\nstart-up: node bin/portcullis.js start → first 200 on /health, median of ${runs} spawns (range):\n`);
    for (const r of await measureStartup(cases, runs)) {
      process.stdout.write(
        `  ${r.name.padEnd(40)} ${r.startMs.toFixed(0)} ms (${r.startRange.map((x) => x.toFixed(0)).join('–')}), CPU ${r.cpuMs.toFixed(0)} ms;` +
          ` idle RSS ${r.idleRssMb.toFixed(1)} MB (${r.rssRange.map((x) => x.toFixed(1)).join('–')})\n`,
      );
    }
  } finally {
    cleanup();
  }
  const idle = await measureIdleClients(10_000);
  process.stdout.write(
    `  10,000 idle keep-alive clients: +${(idle.afterMb - idle.beforeMb).toFixed(1)} MB RSS (${Math.round(idle.perClientBytes)} B each)\n`,
  );
  const limiter = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/limiter.ts', 'heap'], { cwd: ROOT, encoding: 'utf8' });
  const heap = limiter.stdout.split('\n').filter((l) => l.includes('heap'));
  process.stdout.write(`  memory store, 1M clients:\n${heap.map((l) => `    ${l.trim()}`).join('\n')}\n`);
}

async function main(): Promise<void> {
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
  if (run('auth')) {
    scenarios.push(() =>
      withGateway(
        ports,
        AUTH_ON,
        '',
        async (base) => {
          const auth = [`Authorization: Bearer ${await accessToken(base)}`];
          wrk('warm-up', `${base}/`, auth, '3s');
          return wrk('gateway + JWT verification', `${base}/`, auth);
        },
        {},
        { name: 'gateway + JWT verification' },
      ),
    );
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
    }
    if (run('logins')) await loginsScenario(ports, AUTH_ON);
    if (run('workers')) await workersScenario(ports);
    if (run('startup')) await startupScenario();
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
      },
      env,
      { name: `logins ${engine}` },
    );
  }
}

await main();
