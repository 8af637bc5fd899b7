// Starts real gateways for end-to-end tests: in-process (fast, logs captured) or as a child process (signals, memory).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/server.js';
import { childExit } from './child-exit.js';
import { waitFor } from './wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** A plain object in the config file's shape; merged over the test defaults below. */
export type ConfigInput = Record<string, unknown>;

/** Listen on free loopback ports, JSON logs, no active checks unless a test turns them on. */
function withTestDefaults(input: ConfigInput): ConfigInput {
  const server = (input.server ?? {}) as Record<string, unknown>;
  const admin = (input.admin ?? {}) as Record<string, unknown>;
  const lb = (input.load_balancing ?? {}) as Record<string, unknown>;
  const hc = (lb.health_check ?? {}) as Record<string, unknown>;
  return {
    ...input,
    server: { listen_host: '127.0.0.1', listen_port: 0, ...server },
    admin: { listen_host: '127.0.0.1', listen_port: 0, ...admin },
    logging: { format: 'json', level: 'info', ...((input.logging ?? {}) as object) },
    ...(input.load_balancing === undefined ? {} : { load_balancing: { ...lb, health_check: { enabled: false, ...hc } } }),
  };
}

/** Active health checks fast enough for a test to see an upstream go down and come back within a second. */
export const FAST_HEALTH_CHECKS = {
  enabled: true,
  interval: '100ms',
  timeout: '500ms',
  healthy_threshold: 1,
  unhealthy_threshold: 1,
} as const;

/** Upstream entries for test backends. */
export function upstreams(ports: readonly number[], weights: readonly number[] = []): ConfigInput[] {
  return ports.map((port, i) => ({ name: `b${i + 1}`, address: '127.0.0.1', port, weight: weights[i] ?? 1 }));
}

/** A fresh data directory (SQLite file, generated secret), removed by the caller's cleanup. */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-test-'));
}

export interface InProcessGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly adminUrl: string | undefined;
  /** Every log line written so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  readonly dataDir: string;
  close(): Promise<void>;
}

/** Starts a gateway in this process. Logs are captured (not printed) so tests can assert on them. */
export async function startInProcess(input: ConfigInput, dataDir = tempDataDir()): Promise<InProcessGateway> {
  const config = parseConfigText(stringify(withTestDefaults(input)));
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    decodeStrings: true,
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: config.logging.level, base: { service: 'portcullis' } }, sink);
  const gateway = await startGateway(config, { logger, logSink: sink, dataDir });
  return {
    gateway,
    url: `http://127.0.0.1:${gateway.port}`,
    adminUrl: gateway.adminPort === undefined ? undefined : `http://127.0.0.1:${gateway.adminPort}`,
    logs,
    dataDir,
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly configFile: string;
  /** The JSON log lines read from stdout so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** The same lines as written (every stdout line starting with "{"), for what JSON.parse hides: a key twice. */
  readonly lines: string[];
  /** Lines starting with "{" that were not JSON (a line cut by another writer's bytes): none, unless a test breaks. */
  readonly garbled: string[];
  readonly stderr: () => string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal to the gateway (to its whole process group when started with `group`). */
  signal(name: NodeJS.Signals): void;
  /** Sends SIGKILL if still running and removes temp files. */
  cleanup(): Promise<void>;
}

/** Where and how long a runCli child runs: the working directory (default the checkout), the whole environment
 * instead of the test's own plus `env`, and a bound after which it is killed (its `code` is then null). */
export interface CliOptions {
  readonly cwd?: string;
  readonly fullEnv?: NodeJS.ProcessEnv;
  readonly boundMs?: number;
}

/** Runs `portcullis <args>` to completion (check-config, bad configs): exit code and output. */
export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: CliOptions = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.fullEnv ?? { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A bound for commands under test that could hang (a FIFO as the config): killed, never left running.
    const timer = options.boundMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.boundMs);
    void childExit(child).then(({ code }) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Writes a config file for `input` (test defaults applied) and returns its path. */
export function writeConfig(input: ConfigInput, raw = false): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(file, stringify(raw ? input : withTestDefaults(input)));
  return file;
}

/** Replaces a spawned gateway's config file with `input` (test defaults applied, as spawnGateway wrote it). */
export function rewriteConfig(gw: Pick<GatewayProcess, 'configFile'>, input: ConfigInput): void {
  const written = writeConfig(input);
  writeFileSync(gw.configFile, readFileSync(written));
  rmSync(join(written, '..'), { recursive: true, force: true });
}

/** How to run a gateway process. */
export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  /** Data directory (default: a fresh temp dir, removed by cleanup()). */
  dataDir?: string;
  /** How long to wait for "Gateway Started" (default 15 s). */
  timeoutMs?: number;
  /**
   * Run in its own process group (for wrappers such as `npm start`, which may not pass signals on): then
   * signal() and cleanup() address the whole group.
   */
  group?: boolean;
  /** Working directory of the process (default: the project root). */
  cwd?: string;
}

/** Starts `portcullis start` as a child process and waits for its "Gateway Started" line. */
export async function spawnGateway(input: ConfigInput, options: ProcessOptions = {}): Promise<GatewayProcess> {
  const configFile = writeConfig(input);
  return startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], configFile, options);
}

/**
 * Runs any command that starts a gateway (`node bin/portcullis.js start`, `npm start -- --config F`, ...) from the
 * project root and waits for its "Gateway Started" JSON log line. `configFile` is only reported back.
 */
export async function startProcess(
  command: string,
  args: readonly string[],
  configFile: string,
  options: ProcessOptions = {},
): Promise<GatewayProcess> {
  const dataDir = options.dataDir ?? tempDataDir();
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group ?? false,
  });
  const logs: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  const garbled: string[] = [];
  let stderr = '';
  let pending = '';
  const exited = childExit(child);
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), options.timeoutMs ?? 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const read = pending.split('\n');
      pending = read.pop() ?? '';
      for (const line of read) {
        if (!line.startsWith('{')) continue;
        lines.push(line);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          garbled.push(line); // kept for the test to assert on; a throw here would be uncaught
          continue;
        }
        logs.push(entry);
        if (entry.msg === 'Gateway Started') {
          clearTimeout(timer);
          resolve(entry);
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${stderr}`));
    });
  });
  const signal = (name: NodeJS.Signals): void => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (options.group) process.kill(-child.pid!, name);
    else child.kill(name);
  };
  let line: Record<string, unknown>;
  try {
    line = await started;
  } catch (err) {
    signal('SIGKILL');
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = line.port as number;
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    adminPort: line.admin_port as number | undefined,
    configFile,
    logs,
    lines,
    garbled,
    stderr: () => stderr,
    exited,
    signal,
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        signal('SIGKILL');
        await exited;
      }
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sends `requests` GET /health to the gateway at `base`, 50 at a time; each must answer 200. */
export async function getHealthMany(base: string, requests: number): Promise<void> {
  for (let sent = 0; sent < requests; sent += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const res = await fetch(`${base}/health`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }),
    );
  }
}

/** How logsReadSoFar reaches a gateway process. */
export interface LogsReadSoFarOptions {
  /** The proxy port speaks TLS (server.tls): the marker request goes over HTTPS, its certificate unchecked. */
  readonly tls?: boolean;
  /** How long the marker's answer and then its log line may take (each; default 5 s). */
  readonly timeoutMs?: number;
}

/**
 * Resolves once every line `gw` wrote before this call has been read into `gw.logs`: for an assertion that a line was
 * NOT written (no Uncaught Exception, no second warning, no reuse logged). Such a line, written with the effect the
 * test saw, may still wait in the child's buffered writer (up to 200 ms: line-writer.ts, flushIntervalMs) and then
 * in the pipe, so its absence right after the effect means nothing; a fixed sleep is a guess a loaded machine
 * outruns. A request for a path of its own is sent and its access-log line waited for: one writer writes every line
 * of the process in order, so the lines written before it have been read once it has.
 *
 * For one gateway process with its access log on stdout (logging.access_log, no access_log_file): a cluster's primary
 * and workers each have a writer of their own. Should the gateway answer no more (it is stopping, as after an uncaught
 * exception), its exit is waited for instead, bounded: the exit writes out its lines, and gw.exited resolves once
 * they are read.
 */
export async function logsReadSoFar(gw: GatewayProcess, options: LogsReadSoFarOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  let ended = false;
  void gw.exited.then(() => (ended = true));
  const marker = `/logs-read-so-far-${randomUUID()}`;
  if (!(await answered(gw.port, marker, options.tls ?? false, timeoutMs))) {
    await exitedWithin(gw, timeoutMs);
    return;
  }
  await waitFor(() => ended || gw.logs.some((l) => l.path === marker), `the access-log line of the marker request ${marker}`, timeoutMs, 20);
}

/** Whether a GET of `path` on the proxy port was answered (any status) within `timeoutMs`. */
function answered(port: number, path: string, tls: boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' }, timeout: timeoutMs };
    const onResponse = (res: IncomingMessage): void => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    };
    const req = tls ? httpsRequest({ ...options, rejectUnauthorized: false }, onResponse) : httpRequest(options, onResponse);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Waits for the process's exit (its output read), at most `timeoutMs`; the caller's assertions say the rest. */
async function exitedWithin(gw: GatewayProcess, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([gw.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}
