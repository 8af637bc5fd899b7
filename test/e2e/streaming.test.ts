// 50 MB each way through a gateway child process: bytes identical (sha256) and the gateway's memory stays flat.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { PATTERN_CHUNK, patternSha256, startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { rssBytes, sampleRss, sleep } from '../helpers/wait.js';

const SIZE = 50 * 1024 * 1024;
/** The gateway may grow by socket buffers and JIT, never by anything near the body size. */
const MAX_GROWTH = 40 * 1024 * 1024;

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
  await agent.close();
  await gw.cleanup();
  await backend.stop();
});

/** SIZE bytes of the download pattern, generated chunk by chunk (the test never holds the whole body). */
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
    { objectMode: false },
  );
}

function assertFlat(peak: number, what: string): void {
  const growth = peak - baseline;
  assert.ok(
    growth < MAX_GROWTH,
    `${what}: gateway RSS grew by ${(growth / 1048576).toFixed(1)} MiB (baseline ${(baseline / 1048576).toFixed(1)} MiB)`,
  );
}

describe('streaming 50 MB through the gateway process', () => {
  test('upload arrives byte-identical while the backend holds off reading; gateway RSS stays flat', async () => {
    const sampler = sampleRss(gw.child.pid!);
    const res = await request(`${gw.url}/upload?pause_ms=1000`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
      body: patternStream(SIZE),
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const body = (await res.body.json()) as { sha256: string; bytes: number };
    const peak = sampler.stop();
    assert.equal(res.statusCode, 200);
    assert.equal(body.bytes, SIZE);
    assert.equal(body.sha256, patternSha256(SIZE));
    assert.ok(sampler.samples > 5, 'RSS was sampled during the transfer');
    assertFlat(peak, 'upload');
  });

  test('chunked upload (no content-length) also streams byte-identical', async () => {
    const sampler = sampleRss(gw.child.pid!);
    const res = await request(`${gw.url}/upload`, {
      dispatcher: agent,
      method: 'PUT',
      body: patternStream(SIZE),
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const body = (await res.body.json()) as { sha256: string; bytes: number };
    const peak = sampler.stop();
    assert.equal(res.statusCode, 200);
    assert.equal(body.bytes, SIZE);
    assert.equal(body.sha256, patternSha256(SIZE));
    assertFlat(peak, 'chunked upload');
  });

  test('download arrives byte-identical while the client holds off reading; gateway RSS stays flat', async () => {
    const sampler = sampleRss(gw.child.pid!);
    const res = await request(`${gw.url}/download?bytes=${SIZE}`, {
      dispatcher: agent,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(SIZE));
    // A slow client: if the gateway ignored backpressure it would pull the whole body from the backend now.
    await sleep(1_000);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const peak = sampler.stop();
    assert.equal(bytes, SIZE);
    assert.equal(hash.digest('hex'), patternSha256(SIZE));
    assertFlat(peak, 'download');
  });
});
