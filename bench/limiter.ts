// Limiter benchmark: decisions/s (memory, Redis sequential and 64 in flight) and heap for a million memory buckets.
// Run: node --expose-gc --import tsx bench/limiter.ts [pure|memory|redis|heap ...]   (REDIS_URL, default redis://127.0.0.1:6379)
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClient } from '@redis/client';
import { MemoryKvStore } from '../src/kv/memory.js';
import { createRedisKvStore } from '../src/kv/redis.js';
import type { BucketRule } from '../src/kv/kv-store.js';
import { takeToken, type BucketState } from '../src/ratelimit/bucket.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPEC_RULE: BucketRule = { capacity: 10, refillPerSecond: 100 / 60 };
const rows: Array<[string, string]> = [];
/** --expose-gc when given; otherwise the flag is turned on now and gc() taken from a fresh context. */
const gc: (() => void) | undefined =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    try {
      setFlagsFromString('--expose-gc');
      return runInNewContext('gc') as () => void;
    } catch {
      return undefined;
    }
  })();

/** JS heap plus ArrayBuffer memory (the memory store keeps its buckets in typed arrays, outside the JS heap). */
function heapMb(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 1024 / 1024;
}

function perSecond(count: number, ms: number): string {
  return `${Math.round((count / ms) * 1000).toLocaleString('en-US')} /s`;
}

function benchPure(): void {
  const n = 5_000_000;
  let state: BucketState | undefined;
  let passed = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const step = takeToken(state, SPEC_RULE, i * 0.01);
    state = step.state;
    if (step.result.allowed) passed++;
  }
  rows.push(['bucket.ts takeToken (pure)', perSecond(n, performance.now() - start)]);
  if (passed === 0) throw new Error('unreachable');
}

function benchMemory(): void {
  const store = new MemoryKvStore();
  const keys = Array.from({ length: 10_000 }, (_, i) => `p:10.0.${i >> 8}.${i & 255}`);
  const n = 3_000_000;
  for (let i = 0; i < 100_000; i++) store.take(keys[i % keys.length]!, SPEC_RULE); // warm-up
  const start = performance.now();
  for (let i = 0; i < n; i++) store.take(keys[i % keys.length]!, SPEC_RULE);
  rows.push(['memory store take (10k clients)', perSecond(n, performance.now() - start)]);
  void store.close();
}

async function benchRedis(): Promise<void> {
  const prefix = `portcullis-bench:${randomUUID()}:`;
  const store = createRedisKvStore({ url: REDIS_URL, keyPrefix: prefix });
  for (let i = 0; ; i++) {
    try {
      await store.ping();
      break;
    } catch (err) {
      if (i > 50) {
        rows.push(['redis', `skipped: unreachable at ${new URL(REDIS_URL).host}`]);
        await store.close();
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const keys = Array.from({ length: 1000 }, (_, i) => `p:10.1.${i >> 8}.${i & 255}`);
  // Sequential: one decision at a time, i.e. the round-trip latency bound.
  const seq = 20_000;
  const latencies = new Float64Array(seq);
  let start = performance.now();
  for (let i = 0; i < seq; i++) {
    const t = performance.now();
    await store.take(keys[i % keys.length]!, SPEC_RULE);
    latencies[i] = performance.now() - t;
  }
  const seqMs = performance.now() - start;
  latencies.sort();
  rows.push(['redis take, sequential', perSecond(seq, seqMs)]);
  rows.push(['  latency p50 / p99', `${latencies[seq >> 1]!.toFixed(3)} / ${latencies[Math.floor(seq * 0.99)]!.toFixed(3)} ms`]);
  // 64 in flight: what one gateway process gets under concurrent load (node-redis pipelines on one connection).
  const total = 200_000;
  let next = 0;
  start = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) {
        const i = next++;
        await store.take(keys[i % keys.length]!, SPEC_RULE);
      }
    }),
  );
  rows.push(['redis take, 64 in flight', perSecond(total, performance.now() - start)]);
  await store.close();
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  const leftovers = await admin.keys(`${prefix}*`);
  for (let i = 0; i < leftovers.length; i += 1000) await admin.del(leftovers.slice(i, i + 1000));
  await admin.close();
}

async function benchHeap(): Promise<void> {
  const clients = 1_000_000;
  // 100/s refill: each client's bucket is full again 10 ms after its request, so the sweep can drop it.
  const rule: BucketRule = { capacity: 10, refillPerSecond: 100 };
  const store = new MemoryKvStore({ maxBuckets: clients, sweepIntervalMs: 250 });
  const before = heapMb();
  const start = performance.now();
  for (let i = 0; i < clients; i++) store.take(`p:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rule);
  const insertMs = performance.now() - start;
  const filled = heapMb();
  rows.push(['1M distinct clients: insert', perSecond(clients, insertMs)]);
  rows.push(['  heap + typed arrays before / after 1M', `${before.toFixed(1)} MB / ${filled.toFixed(1)} MB (${store.bucketCount.toLocaleString('en-US')} buckets, ~${Math.round(((filled - before) * 1024 * 1024) / clients)} B each)`]);
  // Let the store's own (chunked) timed sweep empty the map, watching how long it ever blocks the event loop.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const sweepStart = performance.now();
  while (store.bucketCount > 0) await new Promise((r) => setTimeout(r, 5));
  const sweepMs = performance.now() - sweepStart;
  delay.disable();
  rows.push(['  timed sweep of 1M full buckets', `gone after ${sweepMs.toFixed(0)} ms (250 ms timer); longest event-loop stall ${(delay.max / 1e6).toFixed(1)} ms`]);
  const swept = heapMb();
  rows.push(['  heap + typed arrays after sweep', `${swept.toFixed(1)} MB (${store.bucketCount} buckets)`]);
  await store.close();
}

// `-- heap` (or other section names) runs only those sections.
const only = new Set(process.argv.slice(2));
const want = (name: string): boolean => only.size === 0 || only.has(name);
if (want('pure')) benchPure();
if (want('memory')) benchMemory();
if (want('redis')) await benchRedis();
if (want('heap')) await benchHeap();
if (gc === undefined) rows.push(['note', 'gc() unavailable: heap figures include garbage']);

const width = Math.max(...rows.map(([name]) => name.length));
console.log(`Portcullis limiter benchmark (node ${process.version}, ${new Date().toISOString()})`);
for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
