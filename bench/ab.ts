// Paired A/B: CPU time per request of several proxies loaded at the same time, for differences too small for
// `npm run bench` on a shared machine. Every variant runs as its own process pinned to the gateway core, with one wrk
// each on the load core, all during the same seconds: whatever slows the machine in a round slows every variant
// alike, and each round's ratio to the first variant cancels it. Rounds that `npm run bench` measures one after the
// other moved by ±30 % here; paired ratios by a few per cent. Not a test.
//
// Usage: node --import tsx bench/ab.ts [--rounds 12] [--seconds 4] [--against REV] variant ...
//   variants: bare (node:http + undici), baretoken (bare, sent the token variants' Authorization header: what the
//   header alone costs a proxy that forwards it), core (auth and rate limit off), nolog (core, logging.access_log: false),
//   complete (as in `npm run bench`), its parts over core one at a time (auth: JWT; ratelimit: memory limiter;
//   logfile: access log to a file; single: the same in access_log_format single; routes: 20 routes), tracing (core,
//   sample_ratio 0.01, collector unreachable), redis (complete with the Redis store: limiter and revocations),
//   redislimit (core + the Redis limiter); default: bare core complete.
//   --against REV: each gateway variant also runs from a build of git revision REV (a worktree in the temp directory,
//   node_modules linked), named "<variant>@REV": the cost of a change, measured against the code before it.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, GATEWAY_CPU, LOAD_CPU, REDIS_URL, OFF, COMPLETE, UNLIMITED, accessToken, buildRevision, cpuTimeUs, gatewayConfig, median, removeRevision, startPinned, stop, type Started, ensureCurrentBuild } from './harness.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '12' }, seconds: { type: 'string', default: '4' }, against: { type: 'string' } },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
/** Connections per variant: all variants together keep the gateway core saturated. */
const CONNECTIONS = 32;

const VARIANTS: Record<string, { middleware: Record<string, unknown>; token?: boolean; redis?: boolean }> = {
  core: { middleware: OFF },
  nolog: { middleware: { ...OFF, access_log: false } },
  complete: { middleware: COMPLETE, token: true },
  // The complete configuration's parts, one at a time over core.
  auth: { middleware: { ...OFF, auth: { enabled: true } }, token: true },
  ratelimit: { middleware: { ...OFF, rate_limit: UNLIMITED } },
  logfile: { middleware: { ...OFF, access_log_file: true } },
  single: { middleware: { ...OFF, access_log_file: true, access_log_format: 'single' } },
  routes: { middleware: { ...OFF, routes: 20 } },
  tracing: { middleware: { ...OFF, tracing: { otlp_endpoint: 'http://127.0.0.1:9/v1/traces', sample_ratio: 0.01 } } },
  redis: { middleware: COMPLETE, token: true, redis: true },
  redislimit: { middleware: { ...OFF, rate_limit: UNLIMITED }, redis: true },
};

interface Running {
  readonly name: string;
  readonly process: Started;
  readonly url: string;
  readonly headers: string[];
}

async function startVariant(name: string, ports: number[], cwd: string, label: string): Promise<Running> {
  if (name === 'bare' || name === 'baretoken') {
    const p = await startPinned(GATEWAY_CPU, ['--import', 'tsx', 'bench/passthrough.ts'], { BACKEND_PORTS: ports.join(',') }, '"Gateway Started"', cwd);
    return { name: label, process: p, url: `http://127.0.0.1:${p.line.port as number}/`, headers: [] };
  }
  // "core:--flag --flag": the variant run under those node flags (what a V8 setting does to the same gateway).
  const [base, ...flags] = name.split(':');
  const variant = VARIANTS[base!];
  if (variant === undefined) throw new Error(`unknown variant ${name} (bare, ${Object.keys(VARIANTS).join(', ')})`);
  const nodeFlags = flags.join(':').split(' ').filter((f) => f !== '');
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-ab-data-'));
  const config = gatewayConfig(ports, variant.middleware, variant.redis === true ? REDIS_URL : '');
  const p = await startPinned(GATEWAY_CPU, [...nodeFlags, 'bin/portcullis.js', 'start', '--config', config], { PORTCULLIS_DATA_DIR: dataDir }, '"Gateway Started"', cwd);
  const url = `http://127.0.0.1:${p.line.port as number}`;
  const headers = variant.token === true ? [`Authorization: Bearer ${await accessToken(url)}`] : [];
  return { name: label, process: p, url: `${url}/`, headers };
}

/** Runs wrk against `url` on the load core; resolves with the number of requests it completed. */
function wrk(url: string, headers: string[], seconds: number): Promise<number> {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`];
  for (const h of headers) args.push('-H', h);
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', [...args, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const n = Number(/(\d+) requests in/.exec(out)?.[1]);
      if (Number.isFinite(n) && n > 0) resolve(n);
      else reject(new Error(`wrk against ${url} failed: ${out.slice(-300)}`));
    });
  });
}

async function main(): Promise<void> {
  ensureCurrentBuild();
  const names = positionals.length > 0 ? positionals : ['bare', 'core', 'complete'];
  const worktree = values.against === undefined ? undefined : buildRevision(values.against);
  const backends = await startPinned(LOAD_CPU, ['--import', 'tsx', 'bench/backends.ts'], {}, '"Backends Started"');
  const running: Running[] = [];
  try {
    const ports = backends.line.ports as number[];
    for (const name of names) {
      running.push(await startVariant(name, ports, ROOT, name));
      if (worktree !== undefined && name !== 'bare' && name !== 'baretoken') running.push(await startVariant(name, ports, worktree, `${name}@${values.against}`));
    }
    // baretoken: the pass-through sent the same Authorization header as the token variants (the same request).
    const tokenHeaders = running.find((r) => r.headers.length > 0)?.headers ?? [`Authorization: Bearer ${'x'.repeat(330)}`];
    running.forEach((r, i) => {
      if (r.name === 'baretoken') running[i] = { ...r, headers: tokenHeaders };
    });
    await Promise.all(running.map((r) => wrk(r.url, r.headers, 3))); // warm-up: JIT, pools, caches
    const cpuUs = running.map(() => [] as number[]);
    const ratios = running.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      const before = running.map((r) => cpuTimeUs(r.process.child.pid!));
      const requests = await Promise.all(running.map((r) => wrk(r.url, r.headers, SECONDS)));
      const perRequest = running.map((r, i) => (cpuTimeUs(r.process.child.pid!) - before[i]!) / requests[i]!);
      perRequest.forEach((us, i) => {
        cpuUs[i]!.push(us);
        ratios[i]!.push(us / perRequest[0]!);
      });
      process.stderr.write(`  round ${round + 1}: ${perRequest.map((us, i) => `${running[i]!.name} ${us.toFixed(1)}`).join(' / ')} CPU µs/req\n`);
    }
    process.stdout.write(
      `\n${running.length} proxies at once on cpu ${GATEWAY_CPU}, wrk -c${CONNECTIONS} each on cpu ${LOAD_CPU}, ${ROUNDS} rounds of ${SECONDS} s\n` +
        `${'variant'.padEnd(24)} ${'CPU µs/req'.padStart(10)}  ${`vs ${running[0]!.name}`.padStart(14)}  spread over rounds\n`,
    );
    running.forEach((r, i) => {
      const spread = `${Math.min(...ratios[i]!).toFixed(3)}–${Math.max(...ratios[i]!).toFixed(3)}`;
      process.stdout.write(`${r.name.padEnd(24)} ${median(cpuUs[i]!).toFixed(1).padStart(10)}  ${median(ratios[i]!).toFixed(3).padStart(14)}  ${spread}\n`);
    });
  } finally {
    await Promise.all([...running.map((r) => stop(r.process)), stop(backends)]);
    if (worktree !== undefined) removeRevision(worktree);
  }
}

await main();
