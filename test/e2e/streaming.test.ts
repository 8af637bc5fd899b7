// 50 MB each way through a gateway child process: bytes identical (sha256), and the gateway does not buffer bodies.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { PATTERN_CHUNK, patternSha256, startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { rssBytes, sampleRss, sleep } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const SIZE = 50 * MiB;
/** How long the receiving side reads nothing; loopback would move all 50 MB in far less if the gateway buffered. */
const STALL_MS = 1_200;
/**
 * Growth the gateway may hold at the end of a stall (the lowest RSS over its last 400 ms, so a garbage-collection
 * spike does not count but memory really held does). A buffering gateway would hold most of the 50 MiB body here,
 * less only what the kernel's socket buffers absorbed; one that applies backpressure holds its stream buffers
 * (measured: 0-9 MiB).
 */
const MAX_STALL_GROWTH = 20 * MiB;
const SUSTAINED_MS = 400;
/**
 * Growth allowed over a whole transfer, from the idle baseline. Not a tight bound on purpose: V8 frees socket chunks lazily (it collects once
 * external memory has grown by 64 MiB), so a non-buffering gateway was measured at 8-44 MiB under CPU load. The
 * stall check above is the one that tells buffering apart.
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

/** Uploads SIZE bytes to /upload while the backend stalls; checks the hash and the gateway's memory. */
async function upload(method: string, headers: Record<string, string>): Promise<void> {
  const whole = sampleRss(gw.child.pid!);
  const stall = sampleRss(gw.child.pid!);
  const stallFrom = rssBytes(gw.child.pid!);
  const stallEnds = sleep(STALL_MS - 200).then(() => {
    stall.stop();
    return stall.sustainedOver(SUSTAINED_MS);
  });
  const res = await request(`${gw.url}/upload?pause_ms=${STALL_MS}`, {
    dispatcher: agent,
    method: method as 'POST',
    headers,
    body: patternStream(SIZE),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const body = (await res.body.json()) as { sha256: string; bytes: number };
  const stallHeld = await stallEnds;
  const peak = whole.stop();
  assert.equal(res.statusCode, 200);
  assert.equal(body.bytes, SIZE);
  assert.equal(body.sha256, patternSha256(SIZE));
  assert.ok(stall.samples > 5, 'RSS was sampled during the stall');
  assertGrowth(stallHeld, stallFrom, MAX_STALL_GROWTH, `${method} upload, backend not reading`);
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
    const res = await request(`${gw.url}/download?bytes=${SIZE}`, {
      dispatcher: agent,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(SIZE));
    // A stalled client: a buffering gateway would pull the whole body from the backend meanwhile.
    const stallFrom = rssBytes(gw.child.pid!);
    const stall = sampleRss(gw.child.pid!);
    await sleep(STALL_MS);
    stall.stop();
    const stallHeld = stall.sustainedOver(SUSTAINED_MS);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const peak = whole.stop();
    assert.equal(bytes, SIZE);
    assert.equal(hash.digest('hex'), patternSha256(SIZE));
    assertGrowth(stallHeld, stallFrom, MAX_STALL_GROWTH, 'download, client not reading');
    assertGrowth(peak, baseline, MAX_TRANSFER_GROWTH, 'download, whole transfer');
  });
});
