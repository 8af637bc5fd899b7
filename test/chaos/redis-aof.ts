// A redis-server of the chaos test's own, with an append-only file, so a SIGKILL and restart keeps its data.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawCommand } from '../kv/redis-helpers.js';

/**
 * Revocations live in Redis: a Redis that forgets them on restart forgets logouts. This one runs as a production
 * Redis should (appendonly yes, appendfsync always), on a port of its own, in a temp dir removed by `dispose()`.
 */
export class PersistentRedis {
  readonly port: number;
  readonly #dir = mkdtempSync(join(tmpdir(), 'portcullis-chaos-redis-'));
  #child: ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.#dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.#child = child;
    const reap = (): void => void child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.off('exit', reap));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      if ((await rawCommand('127.0.0.1', this.port, 'PING', 200)) === '+PONG') return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start within 10 s');
  }

  /** SIGKILL (no clean shutdown), waits for the exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
