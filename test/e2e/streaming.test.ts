// 50 MB each way through a gateway child process: bytes identical (sha256), and the gateway does not buffer bodies.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { PATTERN_CHUNK, patternSha256, startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { rssBytes, sampleRss, sleep } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const SIZE = 50 * MiB;
/**
 * How long the backend reads nothing of an upload. Only a gateway that buffers needs it to be long: it must have read
 * past MAX_HELD by then, and one that did was measured reading as slowly as 6 MiB/s on a loaded machine (the test
 * process makes the body). One that holds back holds the same whatever the length.
 */
const STALL_MS = 4_000;
/**
 * Body bytes the gateway may hold while the other side takes none: what it has read from one socket and not yet
 * written to the other (its /proc io counters, so garbage-collection timing plays no part, unlike RSS). One that
 * applies backpressure holds its stream buffers (measured: 0.07-0.12 MiB); one that does not reads on, a download to
 * the body's end (measured: 45-46 MiB, the rest in the kernel's socket buffers), an upload for as long as the
 * backend stalls. An RSS bound could not tell these apart: RSS moved by -11 to +21 MiB with backpressure (V8 frees
 * socket chunks lazily), and a gateway that ignored it, reading at about 15 MiB/s under load, grew by 5-15 MiB in a
 * 1.2 s stall and passed the 20 MiB bound this replaces.
 */
const MAX_HELD = 8 * MiB;
/** A download's stall lasts until the gateway has read nothing from the backend for this long. */
const QUIET_MS = 400;
/**
 * Growth allowed over a whole transfer, from the idle baseline. Not a tight bound on purpose: V8 frees socket chunks lazily (it collects once
 * external memory has grown by 64 MiB), so a non-buffering gateway was measured at 8-44 MiB under CPU load. The
 * held-bytes checks above are the ones that tell buffering apart.
 */
const MAX_TRANSFER_GROWTH = 80 * MiB;

let backend: TestBackend;
let gw: GatewayProcess;
let baseline: number;
const agent = new Agent({ connections: 4 });

before(async () => {
  backend = await startBackend('big');
  gw = await spawnGateway({ load_balancing: { upstreams: upstreams([backend.port]) } });
  // Warm up the proxy path once, then let the process settle before taking the idle baseline.
  const warm = await request(`${gw.url}/download?bytes=1024`, { dispatcher: agent });
  await warm.body.dump();
  await sleep(300);
  baseline = rssBytes(gw.child.pid!);
});

after(async () => {
  // Guarded: when start-up failed, a listening backend left behind would keep the test process alive.
  await backend?.stop();
  await gw?.cleanup();
  await agent.close();
});

/** `total` bytes of the download pattern, generated chunk by chunk (the test never holds the whole body). */
function patternStream(total: number): Readable {
  return Readable.from(
    (function* () {
      let left = total;
      while (left > 0) {
        const n = Math.min(left, PATTERN_CHUNK.length);
        left -= n;
        yield n === PATTERN_CHUNK.length ? PATTERN_CHUNK : PATTERN_CHUNK.subarray(0, n);
      }
    })(),
  );
}

/** Fails when `peak` is `limit` or more above `from` (the RSS when the phase began). */
function assertGrowth(peak: number, from: number, limit: number, what: string): void {
  const growth = peak - from;
  if (process.env.DEBUG_RSS) console.log(`${what}: +${(growth / MiB).toFixed(1)} MiB`);
  assert.ok(growth < limit, `${what}: gateway RSS grew by ${(growth / MiB).toFixed(1)} MiB (from ${(from / MiB).toFixed(1)} MiB)`);
}

/** Bytes the process has read and written through system calls (sockets, pipes, files): /proc/<pid>/io. */
function ioBytes(pid: number): { read: number; written: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(io)?.[1] ?? NaN);
  return { read: field('rchar'), written: field('wchar') };
}

/**
 * Samples every 25 ms how many bytes the gateway has read and not written since it started: body bytes it holds.
 * `largest()` is the most seen; `read()` what it has read since; `quietFor(ms)` resolves once it has read nothing
 * for `ms` (a gateway holding back stops reading; one that buffers reads to the body's end first).
 */
function sampleHeld(pid: number) {
  const from = ioBytes(pid);
  let largest = 0;
  let lastRead = 0;
  let lastReadAt = Date.now();
  const sample = (): void => {
    try {
      const now = ioBytes(pid);
      const read = now.read - from.read;
      largest = Math.max(largest, read - (now.written - from.written));
      if (read !== lastRead) [lastRead, lastReadAt] = [read, Date.now()];
    } catch {
      // The process ended; the caller's assertions will say why.
    }
  };
  const timer = setInterval(sample, 25);
  return {
    largest: (): number => largest,
    read: (): number => lastRead,
    stop: (): void => {
      sample();
      clearInterval(timer);
    },
    quietFor: async (ms: number): Promise<void> => {
      while (Date.now() - lastReadAt < ms) await sleep(25);
    },
  };
}

/** Fails when the gateway held `held` bytes or more of a body its other side was not taking. */
function assertHeld(held: number, what: string): void {
  if (process.env.DEBUG_RSS) console.log(`${what}: held ${(held / MiB).toFixed(2)} MiB`);
  assert.ok(held < MAX_HELD, `${what}: the gateway held ${(held / MiB).toFixed(1)} MiB of the body`);
}

/** Uploads SIZE bytes to /upload while the backend stalls; checks the hash and the gateway's memory. */
async function upload(method: string, headers: Record<string, string>): Promise<void> {
  const whole = sampleRss(gw.child.pid!);
  const held = sampleHeld(gw.child.pid!);
  // The backend reads nothing for STALL_MS from the request's arrival; stop looking a little before it resumes.
  const stallEnds = sleep(STALL_MS - 200).then(() => held.stop());
  const res = await request(`${gw.url}/upload?pause_ms=${STALL_MS}`, {
    dispatcher: agent,
    method: method as 'POST',
    headers,
    body: patternStream(SIZE),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const body = (await res.body.json()) as { sha256: string; bytes: number };
  await stallEnds;
  const peak = whole.stop();
  assert.equal(res.statusCode, 200);
  assert.equal(body.bytes, SIZE);
  assert.equal(body.sha256, patternSha256(SIZE));
  assert.ok(held.read() > 0, 'the gateway read part of the body during the stall');
  assertHeld(held.largest(), `${method} upload, backend not reading`);
  assertGrowth(peak, baseline, MAX_TRANSFER_GROWTH, `${method} upload, whole transfer`);
}

describe('streaming 50 MB through the gateway process', () => {
  test('upload (content-length) is byte-identical; the gateway holds back while the backend stalls', async () => {
    await upload('POST', { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
  });

  test('chunked upload (no content-length) is byte-identical and held back the same way', async () => {
    await upload('PUT', { 'content-type': 'application/octet-stream' });
  });

  test('download is byte-identical; the gateway holds back the backend while the client stalls', async () => {
    const whole = sampleRss(gw.child.pid!);
    const held = sampleHeld(gw.child.pid!);
    const res = await request(`${gw.url}/download?bytes=${SIZE}`, {
      dispatcher: agent,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(SIZE));
    // A stalled client: a buffering gateway would pull the whole body from the backend meanwhile. The stall lasts
    // until the gateway stops reading, however slow the machine: at once when it holds back, at the body's end if not.
    await held.quietFor(QUIET_MS);
    held.stop();
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const peak = whole.stop();
    assert.equal(bytes, SIZE);
    assert.equal(hash.digest('hex'), patternSha256(SIZE));
    assert.ok(held.read() > 0, 'the gateway read part of the body during the stall');
    assertHeld(held.largest(), 'download, client not reading');
    assertGrowth(peak, baseline, MAX_TRANSFER_GROWTH, 'download, whole transfer');
  });
});
