// Start-up time and idle memory of `node bin/portcullis.js start` (no npm in between), the median of N spawns.
// Start-up: from spawn() to the first 200 on GET /health. Idle RSS: VmRSS one second after that 200, and of gateways
// left idle for 20 s (measureSettledRss). A bare node:http server measured alike gives the machine's floor.
// Run: node --import tsx bench/startup.ts [--runs 10] [--against REV] [bare|minimal|shipped ...]
//   minimal: auth, admin, rate limit and metrics listener off;  shipped: config/proxy.yaml as `npm start` runs it.
//   --against REV: each gateway case also runs from a build of git revision REV (bench/harness.ts buildRevision),
//   spawns alternating, with the ratio of the medians: what a change does to start-up, on the same minutes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/ports.js';
import { ROOT, buildRevision, median, removeRevision, ensureCurrentBuild } from './harness.js';

export interface StartupSample {
  /** Milliseconds from spawn() to the first 200 on /health. */
  readonly startMs: number;
  /** CPU time (user + system, all threads) the gateway used up to that 200: less sensitive to a loaded machine. */
  readonly cpuMs: number;
  /** Resident set size in MB, `idleMs` (one second by default) after that 200. */
  readonly idleRssMb: number;
}

function healthOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** User + system CPU time of `pid` in ms, from /proc (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** The config of the "minimal" case: one upstream, everything optional off. */
function minimalConfig(dir: string): string {
  const file = join(dir, 'minimal.yaml');
  writeFileSync(
    file,
    [
      'server:',
      '  listen_host: 127.0.0.1',
      '  listen_port: ${PORTCULLIS_PORT}',
      'admin:',
      '  enabled: false',
      'logging:',
      '  format: json',
      'load_balancing:',
      '  upstreams:',
      '    - { name: b1, address: 127.0.0.1, port: 3000 }',
      '  health_check: { enabled: false }',
      'middleware:',
      '  auth: { enabled: false }',
      '  rate_limit: { enabled: false }',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * In place of a config path: a bare node:http server that answers 200 to everything, measured the same way. Its
 * start-up is the floor of this machine (Node's own start, the spawn and the first poll), which moves from day to
 * day; the gateway's figure minus it is what the gateway itself costs.
 */
export const BARE_SERVER = 'bare node:http server';
const BARE_SERVER_SCRIPT =
  "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORTCULLIS_PORT), '127.0.0.1')";

/** Spawns the gateway once with `configPath` and measures it; the process is stopped before resolving. */
export async function sampleStartup(
  configPath: string,
  { env: extraEnv = {}, idleMs = 1000, cwd = ROOT }: { env?: NodeJS.ProcessEnv; idleMs?: number; cwd?: string } = {},
): Promise<StartupSample> {
  const port = await freePort();
  const adminPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-startup-'));
  const started = performance.now();
  const args = configPath === BARE_SERVER ? ['-e', BARE_SERVER_SCRIPT] : ['bin/portcullis.js', 'start', '--config', configPath];
  const child = spawn(process.execPath, args, {
    cwd,
    env: {
      ...process.env,
      PORTCULLIS_PORT: String(port),
      ADMIN_PORT: String(adminPort),
      PORTCULLIS_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    let startMs = Number.NaN;
    let cpu = Number.NaN;
    while (!exited && performance.now() - started < 20_000) {
      if (await healthOk(port)) {
        startMs = performance.now() - started;
        cpu = cpuMs(child.pid!);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    if (Number.isNaN(startMs)) throw new Error(`gateway with ${configPath} did not answer /health`);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    return { startMs, cpuMs: cpu, idleRssMb: rssMb(child.pid!) };
  } finally {
    if (!exited) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Median and range of `runs` spawns per case, cases interleaved so that machine load hits them alike. */
export async function measureStartup(cases: ReadonlyArray<StartupCase>, runs: number) {
  const samples = new Map<string, StartupSample[]>(cases.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, config, cwd] of cases) samples.get(name)!.push(await sampleStartup(config, { cwd }));
  }
  return cases.map(([name]) => {
    const s = samples.get(name)!;
    const start = s.map((x) => x.startMs);
    const rss = s.map((x) => x.idleRssMb);
    const cpu = s.map((x) => x.cpuMs);
    return {
      name,
      startMs: median(start),
      startRange: [Math.min(...start), Math.max(...start)] as const,
      cpuMs: median(cpu),
      idleRssMb: median(rss),
      rssRange: [Math.min(...rss), Math.max(...rss)] as const,
    };
  });
}

/**
 * RSS of gateways left idle: `copies` per case, started together (their start-up times are not read), each left
 * without traffic for `seconds` before VmRSS is read. One second after start-up the heap still holds start-up's
 * garbage and a grown young generation. V8's memory reducer gives much of that back a few seconds after allocation
 * stops (about 4 MB here), but not in every process and not at a fixed time, so this figure is reported beside the
 * one-second figure rather than judged.
 */
export async function measureSettledRss(cases: ReadonlyArray<StartupCase>, copies = 3, seconds = 20) {
  const runs = cases.flatMap((c) => Array.from({ length: copies }, () => c));
  const samples = await Promise.all(runs.map(([, config, cwd]) => sampleStartup(config, { idleMs: seconds * 1000, cwd })));
  return cases.map(([name]) => {
    const rss = samples.filter((_, i) => runs[i]![0] === name).map((x) => x.idleRssMb);
    return { name, rssMb: median(rss), range: [Math.min(...rss), Math.max(...rss)] as const };
  });
}

/** A measured case: its name, the config path (or BARE_SERVER), and the checkout it runs from (default ROOT). */
export type StartupCase = readonly [name: string, config: string, cwd?: string];

/** The cases of goals 2 and 3 (a temp dir holds the minimal config; remove it with the returned cleanup). */
export function startupCases(): { cases: StartupCase[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-startup-config-'));
  return {
    cases: [
      [BARE_SERVER, BARE_SERVER],
      ['minimal (auth, admin, rate limit off)', minimalConfig(dir)],
      ['shipped config/proxy.yaml', join(ROOT, 'config/proxy.yaml')],
    ],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `cases`, each gateway case followed by the same case run from `worktree` (its own copy of a config in the checkout). */
function withRevision(cases: readonly StartupCase[], worktree: string, rev: string): StartupCase[] {
  return cases.flatMap((c): StartupCase[] => {
    const [name, config] = c;
    if (config === BARE_SERVER) return [c];
    const own = config.startsWith(ROOT) ? join(worktree, config.slice(ROOT.length)) : config;
    return [c, [`${name}@${rev}`, own, worktree]];
  });
}

async function main(): Promise<void> {
  ensureCurrentBuild();
  const { values, positionals } = parseArgs({ options: { runs: { type: 'string', default: '10' }, against: { type: 'string' } }, allowPositionals: true });
  const { cases, cleanup } = startupCases();
  let worktree: string | undefined;
  try {
    worktree = values.against === undefined ? undefined : buildRevision(values.against);
    const chosen = positionals.length === 0 ? cases : cases.filter(([name]) => positionals.some((p) => name.startsWith(p)));
    const wanted = worktree === undefined ? chosen : withRevision(chosen, worktree, values.against!);
    const rows = await measureStartup(wanted, Number(values.runs));
    const settled = await measureSettledRss(wanted);
    process.stdout.write(`node bin/portcullis.js start, median of ${values.runs} spawns (range)\n`);
    for (const [i, r] of rows.entries()) {
      process.stdout.write(
        `  ${r.name.padEnd(40)} start ${r.startMs.toFixed(0)} ms (${r.startRange.map((x) => x.toFixed(0)).join('–')})` +
          `  CPU ${r.cpuMs.toFixed(0)} ms` +
          `  RSS after 1 s ${r.idleRssMb.toFixed(1)} MB (${r.rssRange.map((x) => x.toFixed(1)).join('–')})` +
          `  after 20 s idle (3 copies) ${settled[i]!.rssMb.toFixed(1)} MB (${settled[i]!.range.map((x) => x.toFixed(1)).join('–')})\n`,
      );
      const base = rows.find((x) => `${x.name}@${values.against}` === r.name);
      if (base !== undefined) {
        process.stdout.write(
          `  ${''.padEnd(40)} this checkout / ${values.against}: start ${(base.startMs / r.startMs).toFixed(3)},` +
            ` CPU ${(base.cpuMs / r.cpuMs).toFixed(3)}, RSS ${(base.idleRssMb / r.idleRssMb).toFixed(3)}\n`,
        );
      }
    }
  } finally {
    cleanup();
    if (worktree !== undefined) removeRevision(worktree);
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
