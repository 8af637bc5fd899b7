// What was wrong: the access-log file on a disk that filled up. A write that fit only in part (a short write: the
// disk had a few KB left) left a line half written, and the next write's failure (ENOSPC) dropped the rest of it;
// once space came back, the next line was appended to the torn half: one line that was no JSON, in place of two
// (the whole next request's line lost inside it). And the "Log Lines Dropped" report, appended while the disk was
// still full, failed in turn and was counted as one dropped line: its count was lost, so the report written once
// space came back said "dropped":1 for hundreds of lines.
// What is right now: the rest of a half-written line is kept (one line at most) and written first once the disk
// takes bytes again, so every line of the file is one JSON object; a report that fails gives its count back, so
// the lines in the file plus the lines reported dropped are every request.
// The disk is a 64 KiB tmpfs this test mounts (as root, as CI runs); a real `portcullis start` writes to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { smallDisk } from '../helpers/small-disk.js';
import { waitFor } from '../helpers/wait.js';

const { mountPoint, client, cleanups } = smallDisk('portcullis-full-disk-');

test('a disk that fills up and frees again: every line of the access log is JSON, and every request is in it or counted', async () => {
  const b = await startBackend('api');
  cleanups.push(() => b.stop());
  const file = join(mountPoint, 'access.log');
  const gw = await spawnGateway({
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }], health_check: { enabled: false } },
    logging: { access_log_file: file, access_log_format: 'single' },
  });
  cleanups.push(() => gw.cleanup());
  // About 12 KiB left: the first few dozen lines fit, the write that reaches the end is short, the rest fail.
  const filler = join(mountPoint, 'filler');
  writeFileSync(filler, Buffer.alloc(52 * 1024));
  const pad = 'p'.repeat(200); // longer lines: a short write is all but certain to end inside one
  const first = 300;
  for (let i = 0; i < first; i++) assert.equal((await client.request(`${gw.url}/full/${i}/${pad}`)).status, 200);
  const lines = (): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  await waitFor(() => readFileSync(file).length > 0, 'the first lines in the file', 5_000);
  // Every request's line has been tried (flushed at least every 200 ms): the file stops growing while the disk is full.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.ok(lines().length < first, 'the disk filled up');

  rmSync(filler);
  const more = 10;
  for (let i = 0; i < more; i++) assert.equal((await client.request(`${gw.url}/after/${i}`)).status, 200);
  const report = (): Array<{ dropped: number }> =>
    lines().filter((l) => l.includes('"Log Lines Dropped"')).map((l) => JSON.parse(l) as { dropped: number });
  await waitFor(() => lines().filter((l) => l.includes('/after/')).length === more && report().length > 0, 'the later lines and the drop report', 5_000);

  const parsed = lines().map((line) => {
    try {
      return JSON.parse(line) as { msg: string; path?: string; dropped?: number };
    } catch {
      assert.fail(`a line that is not JSON: ${line.slice(0, 80)}...${line.slice(-80)}`);
    }
  });
  const completed = parsed.filter((l) => l.msg === 'Request Completed').length;
  const dropped = parsed.reduce((sum, l) => sum + (l.dropped ?? 0), 0);
  assert.equal(completed + dropped, first + more, `${completed} lines written, ${dropped} reported dropped`);
});
