// What bench/run.ts and bench/ab.ts share: processes pinned to a core, their CPU time from /proc, and the gateway
// configurations of the scenarios.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { buildToRun } from '../bin/build-status.js';

/** The checkout, as a file: URL (for bin/build-status.js) and as a path. */
const ROOT_URL = new URL('../', import.meta.url);
export const ROOT = fileURLToPath(ROOT_URL);
export const GATEWAY_CPU = process.env.BENCH_GATEWAY_CPU ?? '0';
export const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * User + system CPU time of `pid` and of its child processes (cluster workers, the password-hashing process) in
 * microseconds, from /proc (clock ticks of 10 ms).
 */
export function cpuTimeUs(pid: number): number {
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

export interface Started {
  child: ChildProcess;
  line: Record<string, unknown>;
}

/**
 * Spawns a process pinned to `cpu` and waits for its JSON start line whose msg is `ready`. Its stdout goes to a
 * file, as a production gateway's logs would, so no unpinned reader competes with it for its core.
 */
export async function startPinned(cpu: string, args: string[], env: NodeJS.ProcessEnv, ready: string, cwd = ROOT): Promise<Started> {
  const logFile = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-log-')), 'stdout.log');
  const out = openSync(logFile, 'w');
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], {
    cwd,
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

export function stop(p: Started): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) return resolve();
    p.child.once('exit', () => resolve());
    p.child.kill('SIGTERM');
  });
}

export function gatewayConfig(ports: number[], middleware: Record<string, unknown>, redisUrl = '', server: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    stringify({
      server: { listen_host: '127.0.0.1', listen_port: 0, ...server },
      admin: { enabled: false },
      redis: { url: redisUrl },
      jwt: { secret: 'bench-secret-bench-secret-bench-secret-0123' },
      logging: {
        format: 'json',
        access_log: middleware.access_log ?? true,
        ...(middleware.access_log_format ? { access_log_format: middleware.access_log_format } : {}),
        ...(middleware.access_log_file ? { access_log_file: join(dir, 'access.log') } : {}),
      },
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

export const OFF = { auth: { enabled: false }, rate_limit: { enabled: false } };
/** A plugin with four empty hooks; `middleware.plugins: N` in a scenario declares N instances of it. */
export const NOOP_PLUGIN = join(ROOT, 'bench/noop-plugin.mjs');
export function noopNames(count: unknown): string[] {
  return Array.from({ length: typeof count === 'number' ? count : 0 }, (_, i) => `noop${i + 1}`);
}
/** A limit high enough that no request is refused: measures the limiter's cost, not its rejections. */
export const UNLIMITED = { enabled: true, requests_per_minute: 1_000_000_000, burst_size: 1_000_000_000 };
/** Goal 1's complete configuration: JWT, memory rate limiter, access log to a file, metrics (on by default), 20 routes. */
export const COMPLETE = { auth: { enabled: true }, rate_limit: UNLIMITED, routes: 20, access_log_file: true };

/** Registers a user through the gateway and returns an access token. */
export async function accessToken(base: string): Promise<string> {
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'SecurePass123!' }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`register failed with ${res.status}`);
  return body.access_token;
}

/** The value at quantile `q` (0–1) of ascending `sorted` values; NaN for none. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** The median (the mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** What the open-loop probe (bench/latency-probe.ts) reports: requests completed, failed, and latency in ms. */
export interface ProbeResult {
  readonly count: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
}

/** Runs the open-loop probe pinned to the load core against `url`: `rate` requests/s for `seconds`. */
export function runProbe(url: string, rate: number, seconds: number, header?: string): ProbeResult {
  const args = ['-c', LOAD_CPU, process.execPath, '--import', 'tsx', 'bench/latency-probe.ts', url, String(rate), String(seconds)];
  if (header) args.push(header);
  const out = spawnSync('taskset', args, { cwd: ROOT, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`latency probe against ${url} failed: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as ProbeResult;
}

/** What bin/portcullis.js would run instead of the bundle, in words. */
const NOT_THE_BUNDLE = {
  source: 'the TypeScript sources through tsx (src/ changed since the last build, or it was never built)',
  dist: 'dist/cli.js, not the bundle (no bundle, or packages were installed after the last build)',
} as const;

/**
 * Builds this checkout (`npm run build`) whenever bin/portcullis.js would not run its bundle. Otherwise every gateway
 * a benchmark starts would run something users do not (tsx is a second slower to start and 40 MB larger), and
 * `--against` would compare it with a build. Called by each benchmark before it starts a gateway.
 */
export function ensureCurrentBuild(): void {
  const before = buildToRun(ROOT_URL);
  if (before === 'bundle') return;
  process.stderr.write(`bench: bin/portcullis.js would run ${NOT_THE_BUNDLE[before]}: npm run build\n`);
  // tsc reports its errors on stdout: both streams go to stderr, the benchmark's own output stays clean.
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) throw new Error('npm run build failed (its output is above)');
  const after = buildToRun(ROOT_URL);
  if (after !== 'bundle') {
    throw new Error(`after npm run build, bin/portcullis.js would still run ${NOT_THE_BUNDLE[after]}: a file saved during the build, or a clock ahead?`);
  }
}

/**
 * A build of git revision `rev` in a temporary worktree (node_modules linked to this checkout's), for measuring a
 * change against the code before it (`--against REV` of bench/ab.ts and bench/startup.ts). Remove it with
 * removeRevision().
 */
export function buildRevision(rev: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ab-'));
  const add = spawnSync('git', ['worktree', 'add', '--detach', dir, rev], { cwd: ROOT, encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`git worktree add ${rev}: ${add.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const build = spawnSync('npm', ['run', 'build'], { cwd: dir, encoding: 'utf8' });
  if (build.status !== 0 || !existsSync(join(dir, 'dist/.build-stamp'))) throw new Error(`build of ${rev} failed: ${build.stderr.slice(-500)}`);
  return dir;
}

/** Removes a worktree made by buildRevision(). */
export function removeRevision(dir: string): void {
  spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT });
  rmSync(dir, { recursive: true, force: true });
}
