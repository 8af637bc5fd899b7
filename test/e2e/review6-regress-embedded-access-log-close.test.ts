// An embedded gateway (startGateway without a logger of the caller's) that opens logging.access_log_file releases
// the file when it is closed (found by review of 8246513). close() wrote out the buffered lines but left the file's
// descriptor open ("released by the process exit", as the CLI's stop is): an application that starts and stops
// gateways in one process (a test suite, a supervisor of its own, a reload by restart) leaked one descriptor per
// gateway, with the file held open after it was deleted or rotated, until it met EMFILE.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startEmbeddedWithAccessLog } from '../helpers/embedded.js';
import { getStatus as get } from '../helpers/http.js';

let backend: TestBackend;
let dir: string;

before(async () => {
  backend = await startBackend('echo');
  dir = mkdtempSync(join(tmpdir(), 'portcullis-embedded-close-'));
});

after(async () => {
  await backend?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** This process's open descriptors on `path` (Linux: /proc/self/fd). */
function descriptorsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed while listed (the listing's own descriptor): not ours to count
    }
  }
  return n;
}

test('close() of an embedded gateway writes out its access lines and closes access_log_file', async () => {
  const file = join(dir, 'access.log');
  for (let round = 1; round <= 3; round++) {
    const embedded = await startEmbeddedWithAccessLog(backend.port, file);
    try {
      assert.equal(descriptorsOn(file), 1, 'the running gateway holds the file open');
      assert.equal(await get(embedded.port, `/round-${round}`), 200);
    } finally {
      await embedded.close();
    }
    // Every line is in the file, and nothing holds it any more.
    const paths = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"Request Completed"'))
      .map((l) => (JSON.parse(l) as { path: string }).path);
    assert.deepEqual(paths, Array.from({ length: round }, (_, i) => `/round-${i + 1}`));
    assert.equal(descriptorsOn(file), 0, `no descriptor left on the access log after close() (round ${round})`);
  }
});
