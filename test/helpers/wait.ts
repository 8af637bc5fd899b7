// Small waiting helpers for tests: poll a condition, sleep, and sample a child process's memory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** Polls `condition` (sync or async) every `everyMs`; rejects after `timeoutMs` (default 5 s) naming `what`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what = 'condition',
  timeoutMs = 5_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `store` to answer a ping (100 tries, 100 ms apart: ~10 s), failing the test with 'the store connected'. */
export async function waitForPing(store: { ping(): Promise<unknown> }): Promise<void> {
  let connected = false;
  for (let i = 0; i < 100 && !connected; i++) {
    connected = await store.ping().then(() => true, () => false);
    if (!connected) await sleep(100);
  }
  assert.ok(connected, 'the store connected');
}

/** Resident set size of process `pid` in bytes, from /proc/<pid>/status (Linux only). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** A running RSS sampler (see sampleRss). */
export interface RssSampler {
  /** Stops sampling; returns the largest RSS seen. */
  stop(): number;
  /** Number of samples taken so far. */
  readonly samples: number;
  /**
   * The smallest RSS among samples taken in the last `ms` before now (or before stop()). Memory that is really held
   * (a buffered body) shows here; short garbage-collection spikes do not.
   */
  sustainedOver(ms: number): number;
}

/** Samples the RSS of `pid` every `intervalMs` (default 25 ms) until stop(). */
export function sampleRss(pid: number, intervalMs = 25): RssSampler {
  const taken: Array<{ at: number; rss: number }> = [{ at: Date.now(), rss: rssBytes(pid) }];
  let stoppedAt: number | undefined;
  const timer = setInterval(() => {
    try {
      taken.push({ at: Date.now(), rss: rssBytes(pid) });
    } catch {
      // The process ended; the caller's assertions will say why.
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      stoppedAt ??= Date.now();
      return Math.max(...taken.map((s) => s.rss));
    },
    get samples() {
      return taken.length;
    },
    sustainedOver(ms: number) {
      const end = stoppedAt ?? Date.now();
      const recent = taken.filter((s) => s.at >= end - ms).map((s) => s.rss);
      return recent.length > 0 ? Math.min(...recent) : taken[taken.length - 1]!.rss;
    },
  };
}
