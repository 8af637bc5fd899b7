// Test helpers for the Redis suites: the shared server's URL and availability, and throwaway redis-server processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The shared test Redis (never stopped by tests). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix unique to this run, so suites never see each other's keys. */
export function uniquePrefix(suite: string): string {
  return `portcullis-test:${suite}:${randomUUID()}:`;
}

/** Sends one inline command over a raw socket and returns the first reply line, or undefined on any failure. */
export async function rawCommand(host: string, port: number, command: string, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let data = '';
    const done = (value: string | undefined): void => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const end = data.indexOf('\r\n');
      if (end !== -1) done(data.slice(0, end));
    });
  });
}

/**
 * Whether the shared Redis answers. When it does not: under CI=true this throws (the suite must fail, not skip);
 * otherwise it returns a skip message for node:test.
 */
export async function requireRedis(): Promise<string | false> {
  const url = new URL(REDIS_URL);
  const reply = await rawCommand(url.hostname, Number(url.port || 6379), 'PING');
  if (reply === '+PONG') return false;
  const message = `Redis unreachable at ${url.host}`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: Redis suites must not be skipped)`);
  return `${message}; skipped (set CI=true to make this a failure)`;
}

export { freePort } from '../helpers/ports.js';

/** A redis-server process of our own, on a port of our own; kill and restart freely. */
export class ThrowawayRedis {
  readonly port: number;
  readonly #extraArgs: readonly string[];
  readonly #password: string | undefined;
  #child: ChildProcess | undefined;
  /** Its working directory (start()), where a replica's sync writes its RDB file. */
  #dir: string | undefined;

  /** `password`: started with `--requirepass` (the readiness probe then authenticates). */
  constructor(port: number, options: { password?: string } = {}) {
    this.port = port;
    this.#password = options.password;
    this.#extraArgs = options.password === undefined ? [] : ['--requirepass', options.password];
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Spawns redis-server (no persistence) and resolves once it answers PING. Throws after 5 s. In a directory of its
   * own, removed by kill(): a master still writes an RDB file to sync a replica (REPLICAOF), and one left in the
   * checkout was loaded by every throwaway server started there afterwards, keys and all.
   */
  async start(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-redis-'));
    this.#dir = dir;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...this.#extraArgs];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.#child = child;
    // Never leave our server behind if the test process dies before its after() hook.
    const reap = (): void => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', reap);
    child.once('exit', () => process.off('exit', reap));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      // Without a password PING answers +PONG; with one, -NOAUTH: either way the server is up.
      const reply = await rawCommand('127.0.0.1', this.port, 'PING', 200);
      if (reply === '+PONG' || (this.#password !== undefined && reply?.startsWith('-NOAUTH') === true)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start within 5 s');
  }

  /** Sends a signal to our own process only (SIGKILL: gone; SIGSTOP/SIGCONT: stalled/resumed). */
  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  /** Kills the process and waits until it has exited. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGCONT'); // a stopped process must be resumed to die promptly on some systems
      child.kill('SIGKILL');
      await exited;
    }
    this.#child = undefined;
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

/** Whether `redis-server` can be spawned here. */
export async function redisServerInstalled(): Promise<boolean> {
  const child = spawn('redis-server', ['--version'], { stdio: 'ignore' });
  const [code] = (await Promise.race([once(child, 'exit'), once(child, 'error').then(() => [1])])) as [number | null];
  return code === 0;
}
