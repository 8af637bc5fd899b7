// Keeps logins running against a gateway from a separate process (pinned to the load core) during a measurement.
import { spawn } from 'node:child_process';
import { ROOT } from './harness.js';

export interface LoginLoad {
  /** Resolves once the user exists and the login loop has started. */
  ready: Promise<void>;
  /** Freezes the worker (SIGSTOP): no new logins; those already sent finish on the gateway. */
  pause(): void;
  /** Lets a paused worker go on (SIGCONT). */
  resume(): void;
  /** Stops the loop (paused or not); resolves to logins per second achieved over its whole life. */
  stop(): Promise<number>;
}

/** `rate`: logins per second at most (0: as many as `concurrency` loops manage). */
export function startLoginLoad(base: string, cpu: string, rate = 0, concurrency = 4): LoginLoad {
  const child = spawn('taskset', ['-c', cpu, process.execPath, '--import', 'tsx', 'bench/login-worker.ts', base, String(concurrency), String(rate)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (output.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`login worker exited with ${code}`)));
  });
  return {
    ready,
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    stop() {
      child.kill('SIGCONT'); // a stopped process would hold SIGTERM until continued
      return new Promise((resolve) => {
        child.once('exit', () => {
          const rate = /rate=([\d.]+)/.exec(output)?.[1];
          resolve(Number(rate ?? 'NaN'));
        });
        child.kill('SIGTERM');
      });
    },
  };
}
