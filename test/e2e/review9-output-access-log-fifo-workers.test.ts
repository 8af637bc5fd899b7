// What was wrong: a FIFO as `logging.access_log_file` with `server.workers` above 1. Each worker opens the FIFO
// itself and wrote up to 64 KiB at a time, as to a regular file; but a pipe keeps a write whole only up to PIPE_BUF
// (4 KiB), and a non-blocking one (2a8c2ed's O_NONBLOCK) takes as much of a larger write as it has room for, the rest
// following once the reader made room: the other worker's bytes landed between the two parts, and the shipper read
// torn lines, two half lines glued into one that is no JSON.
// What is right now: a FIFO or socket at the path is written as a cluster's shared stdout is (LineWriterOptions.
// shared): whole lines, at most PIPE_BUF a write (a line longer than that alone can be cut), so every line the
// reader gets is one worker's whole line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sleep, waitFor } from '../helpers/wait.js';

const client = createClient({ connections: 16 });
const dir = mkdtempSync(join(tmpdir(), 'portcullis-fifo-workers-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  await client.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('two workers appending to one FIFO with a slow reader: every line the reader gets is whole JSON', async () => {
  const backend = await startBackend('api');
  cleanups.push(() => backend.stop());
  const fifo = join(dir, 'access.fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  cleanups.push(() => closeSync(reader));
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(16_384);
  const readSome = (max: number): number => {
    let total = 0;
    while (total < max) {
      let n: number;
      try {
        n = readSync(reader, buf, 0, Math.min(buf.length, max - total), null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
    }
    return total;
  };
  // A slow reader: 16 KiB every 20 ms, so the pipe is often full and the workers' writes are taken in parts.
  let slow = true;
  const reading = (async () => {
    while (slow) {
      readSome(16_384);
      await sleep(20);
    }
  })();
  const gw = await spawnGateway({
    server: { workers: 2 },
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging: { access_log_file: fifo, access_log_format: 'single' },
  });
  cleanups.push(() => gw.cleanup());
  const pad = 'p'.repeat(1_500);
  const count = 600;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        assert.equal((await client.request(`${gw.url}/fifo/${i}/${pad}`, { timeoutMs: 10_000 })).status, 200);
      }
    }),
  );
  slow = false;
  await reading;
  const text = (): string => Buffer.concat(chunks).toString('utf8');
  const seen = (): number => (text().match(/"path":"\/fifo\/\d+\//g) ?? []).length;
  await waitFor(
    () => {
      readSome(1 << 20);
      return seen() >= count || text().split('\n').some((l) => l !== '' && !isJson(l));
    },
    'every request line read',
    15_000,
    20,
  );
  const torn = text()
    .split('\n')
    .filter((l) => l !== '' && !isJson(l));
  assert.deepEqual(torn.map((l) => l.slice(0, 120)), [], `${torn.length} torn lines`);
  assert.equal(seen(), count);
});

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
