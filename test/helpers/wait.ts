// Small waiting helpers for tests: poll a condition, sleep, and sample a child process's memory.
import { readFileSync } from 'node:fs';

/** Polls `condition` every 10 ms; rejects after `timeoutMs` (default 5 s) naming `what`. */
export async function waitFor(condition: () => boolean, what = 'condition', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resident set size of process `pid` in bytes, from /proc/<pid>/status (Linux only). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples the RSS of `pid` every `intervalMs` until stop(), which returns the largest value seen. */
export function sampleRss(pid: number, intervalMs = 25): { stop(): number; readonly samples: number } {
  let peak = rssBytes(pid);
  let samples = 1;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
      samples++;
    } catch {
      // The process ended; the caller's assertions will say why.
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
    get samples() {
      return samples;
    },
  };
}
