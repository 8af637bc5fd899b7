// The line writer keeps every line, in order, through a real pipe; and counts what it had to drop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Runs a child that writes `lines` lines through a LineWriter on fd 1 and ends it; returns what came out. */
function writeThroughChild(lines: number, maxBuffered?: number): Promise<string> {
  const script = `
    import { LineWriter } from './src/observability/line-writer.ts';
    const w = new LineWriter(1, { chunk: 4096${maxBuffered ? `, maxBuffered: ${maxBuffered}` : ''} });
    let i = 0;
    const pump = () => {
      for (let k = 0; k < 500 && i < ${lines}; k++, i++) w.write('{"n":' + i + '}\\n');
      if (i < ${lines}) setImmediate(pump); else setTimeout(() => w.end(), 50);
    };
    pump();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out)); // 'close': stdout fully read ('exit' may come first)
  });
}

test('100k lines arrive complete and in order through a pipe', async () => {
  const out = await writeThroughChild(100_000);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, 100_000);
  lines.forEach((line, i) => assert.equal(line, `{"n":${i}}`));
});

test('multi-byte text and lines longer than a buffer arrive whole and in order, across short writes', async () => {
  // Every 7th line is 3 buffers long; the others carry 2-, 3- and 4-byte UTF-8 characters. The pipe takes short
  // writes, some ending inside a character: the rest must go out as bytes (decoded again as text, the split
  // character became replacement characters).
  const script = `
    import { LineWriter } from './src/observability/line-writer.ts';
    const w = new LineWriter(1, { chunk: 4096 });
    for (let i = 0; i < 5000; i++) {
      const text = i % 7 === 0 ? 'x'.repeat(12_000) : 'é€😀'.repeat(i % 50);
      w.write(JSON.stringify({ n: i, text }) + '\\n');
    }
    setTimeout(() => w.end(), 50);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((resolve) => child.on('close', resolve));
  const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
  assert.equal(lines.length, 5000);
  lines.forEach((line, i) => {
    const { n, text } = JSON.parse(line) as { n: number; text: string };
    assert.equal(n, i);
    assert.equal(text, i % 7 === 0 ? 'x'.repeat(12_000) : 'é€😀'.repeat(i % 50));
  });
});

test('past maxBuffered, lines are dropped and the drop is reported in the stream', async () => {
  const out = await writeThroughChild(20_000, 10_000);
  assert.match(out, /"msg":"Log Lines Dropped"/);
  for (const line of out.trimEnd().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
});

test('a reader that stops reading: memory stays near maxBuffered, and every line arrives or is counted as dropped', async () => {
  const { mkdtempSync, openSync, readSync, closeSync, rmSync, constants } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { LineWriter } = await import('./line-writer.js');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-lw-'));
  const fifo = join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // Non-blocking, like a pipe to a log shipper: once its 64 KiB are full, writes get EAGAIN until someone reads.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  const w = new LineWriter(fd, { maxBuffered: 1 << 20 });
  // What the writer holds, not the garbage made meanwhile: V8's young generation alone can hold 16 MiB and more of
  // dead lines until its next collection, so both readings follow a full collection.
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage();
  let written = 0;
  let refused = 0;
  const started = Date.now();
  while (Date.now() - started < 1500) {
    // A busy gateway: a few ms of logging per event-loop turn, the writer's retries in between.
    const turn = Date.now() + 3;
    while (Date.now() < turn) (w.write(`{"n":${written++},"pad":"${'x'.repeat(150)}"}\n`) ? 0 : refused++);
    await new Promise((resolve) => setImmediate(resolve));
  }
  gc();
  const after = process.memoryUsage();
  const grown = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
  assert.ok(refused > 0, 'the stalled pipe made the writer refuse lines');
  assert.ok(grown < 16 << 20, `held ${(grown / 2 ** 20).toFixed(1)} MiB for a 1 MiB limit`);
  // Now read it all: accepted lines in order, and the refused ones reported as a count.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  w.end();
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(1 << 16);
  let idle = 0;
  while (idle < 30) {
    let n = 0;
    try {
      n = readSync(reader, buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    if (n > 0) {
      chunks.push(Buffer.from(buffer.subarray(0, n)));
      idle = 0;
    } else {
      idle++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  closeSync(reader);
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  let arrived = 0;
  let reported = 0;
  let last = -1;
  for (const line of Buffer.concat(chunks).toString('utf8').trimEnd().split('\n')) {
    const parsed = JSON.parse(line) as { n?: number; dropped?: number };
    if (parsed.dropped !== undefined) reported += parsed.dropped;
    else {
      assert.ok(parsed.n! > last, 'in order');
      last = parsed.n!;
      arrived++;
    }
  }
  assert.equal(arrived + reported, written);
  assert.equal(reported, refused);
});

test('lines refused before end() are reported by it', async () => {
  const { mkdtempSync, openSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { LineWriter } = await import('./line-writer.js');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-lw-'));
  const file = join(dir, 'out.log');
  const w = new LineWriter(openSync(file, 'w'), { maxBuffered: 1000 });
  let refused = 0;
  for (let i = 0; i < 300; i++) if (!w.write(`{"n":${i}}\n`)) refused++;
  w.end();
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  rmSync(dir, { recursive: true, force: true });
  assert.ok(refused > 0);
  const report = JSON.parse(lines.at(-1)!) as { msg: string; dropped: number };
  assert.equal(report.msg, 'Log Lines Dropped');
  assert.equal(report.dropped, refused);
  assert.equal(lines.length - 1 + refused, 300);
});

test('reopen() switches descriptors at a line boundary, even while a slow pipe takes short writes', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-lw-'));
  const file = join(dir, 'after.log');
  const total = 40_000;
  const script = `
    import { openSync } from 'node:fs';
    import { LineWriter } from './src/observability/line-writer.ts';
    const w = new LineWriter(1, { chunk: 65536 });
    let i = 0;
    const pump = () => {
      for (let k = 0; k < 1000 && i < ${total}; k++, i++) w.write('{"n":' + i + ',"pad":"${'x'.repeat(120)}"}\\n');
      if (i === ${total / 2}) w.reopen(() => openSync(${JSON.stringify(file)}, 'a'));
      if (i < ${total}) setImmediate(pump); else setTimeout(() => w.end(), 300);
    };
    pump();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
  let out = '';
  // Read slowly at first: the pipe fills, so the writer gets short writes around the switch.
  child.stdout.pause();
  setTimeout(() => child.stdout.resume(), 300);
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  const after = readFileSync(file, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  assert.ok(out.endsWith('\n') && after.endsWith('\n'), 'both sides end on a whole line');
  const lines = [...out.trimEnd().split('\n'), ...after.trimEnd().split('\n')];
  assert.ok(out.length > 0 && after.length > 0, 'lines went to both descriptors');
  assert.equal(lines.length, total);
  lines.forEach((line, i) => assert.equal((JSON.parse(line) as { n: number }).n, i));
});

/**
 * Three processes write lines through their own LineWriter (`shared` as given) to one pipe, as a cluster's workers
 * write to the gateway's stdout, to a reader that waits half a second and then reads 512 bytes at a time: the
 * writers block on a full pipe, each page the reader frees lets one of them go on, and the rest of a large write
 * can land after another's bytes. (A reader that empties the pipe at once lets a 64 KiB write through whole.)
 * Returns what came out.
 */
async function writeSharedPipe(shared: boolean): Promise<string> {
  // Each writer marks a file once it has written its first lines; the reader starts after all three, so every
  // writer is blocked on the full pipe when it does, however long they took to start.
  const ready = mkdtempSync(join(tmpdir(), 'portcullis-shared-pipe-'));
  const writer = `
    import { writeFileSync } from 'node:fs';
    import { LineWriter } from './src/observability/line-writer.ts';
    const w = new LineWriter(1, { shared: ${shared} });
    const tag = process.argv[1];
    const pad = 'x'.repeat(200 + Number(tag) * 37);
    const line = (n) => '{"w":' + tag + ',"n":' + n + ',"pad":"' + pad + '"}\\n';
    let i = 0;
    const pump = () => {
      // Each round starts with 20 lines in one call (over PIPE_BUF together), then one line a call.
      let batch = '';
      for (const end = i + 20; i < end; i++) batch += line(i);
      w.write(batch);
      for (let k = 20; k < 200 && i < 3000; k++, i++) w.write(line(i));
      if (i === 200) writeFileSync(${JSON.stringify(ready)} + '/' + tag, '');
      if (i < 3000) setImmediate(pump); else w.end();
    };
    pump();`;
  const parent = `
    import { spawn } from 'node:child_process';
    for (const tag of ['1', '2', '3'])
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ${JSON.stringify(writer)}, tag], { stdio: ['ignore', 'inherit', 'inherit'] });`;
  // A shell pipeline: a real pipe (node's own stdio pipes are socket pairs).
  const allReady = `until [ -e "${ready}/1" ] && [ -e "${ready}/2" ] && [ -e "${ready}/3" ]; do sleep 0.05; done; sleep 0.2`;
  const command = `"${process.execPath}" --input-type=module -e '${parent.replace(/'/g, `'\\''`)}' | (${allReady}; dd bs=512 status=none)`;
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', command], { cwd: ROOT });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });
  } finally {
    rmSync(ready, { recursive: true, force: true });
  }
}

test('shared: writers sharing one pipe (cluster workers on stdout) never cut into each other\'s lines', { timeout: 60_000 }, async () => {
  const out = await writeSharedPipe(true);
  const lines = out.trimEnd().split('\n');
  const next = new Map<number, number>();
  for (const line of lines) {
    const { w, n } = JSON.parse(line) as { w: number; n: number }; // throws on a line cut by another writer's bytes
    assert.equal(n, next.get(w) ?? 0, `writer ${w}'s lines in order`);
    next.set(w, n + 1);
  }
  assert.deepEqual([...next.values()], [3000, 3000, 3000]);
});

test('end() after the reader went away returns and lets the process exit (the drops cannot be reported)', { timeout: 30_000 }, async () => {
  // The pipe's reader is gone (`portcullis start | head`, then SIGTERM): every write fails with EPIPE, and end()
  // comes while one is running. Each failed write counts its lines as dropped; the report of those drops failed in
  // turn, was counted, and was reported again, forever.
  const script = `
    import { LineWriter } from './src/observability/line-writer.ts';
    const w = new LineWriter(1, { chunk: 4096 });
    const started = Date.now();
    const pump = () => {
      for (let k = 0; k < 200; k++) w.write('{"pad":"' + 'x'.repeat(100) + '"}\\n');
      if (Date.now() - started < 300) setImmediate(pump); else w.end();
    };
    pump();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.destroy(); // the reader goes away at once
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('still running after 10 s'), 10_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(`exited: ${code ?? signal}`);
    });
  });
  if (outcome.startsWith('still')) child.kill('SIGKILL');
  assert.equal(outcome, 'exited: 0');
});

test('close(): every line is written, then the descriptor is closed and close() resolves, and later lines are refused without a throw', async () => {
  const { openSync, readFileSync, readlinkSync } = await import('node:fs');
  const { LineWriter } = await import('./line-writer.js');
  const dir = mkdtempSync(join(tmpdir(), 'line-writer-close-'));
  try {
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'a');
    // Small chunks: the lines fill several buffers, so a write is running when close() is called.
    const w = new LineWriter(fd, { chunk: 256 });
    for (let i = 0; i < 200; i++) w.write(`{"n":${i}}\n`);
    // The descriptor goes once the running write and the rest are out (asynchronously): close() resolves then, so a
    // caller that awaits it (an embedded gateway's close()) no longer holds the file.
    const closing = w.close();
    assert.equal(isOpenOn(readlinkSync, fd, path), true, 'a write was still running when close() was called');
    await closing;
    assert.equal(isOpenOn(readlinkSync, fd, path), false, 'the descriptor is closed once close() resolves');
    assert.equal(w.write('{"late":1}\n'), false, 'a line after close() is refused');
    w.flush();
    w.end();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.deepEqual(lines, Array.from({ length: 200 }, (_, i) => `{"n":${i}}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Whether `fd` is still open on `path` in this process (Linux: /proc/self/fd; a number reused for another file is not). */
function isOpenOn(readlink: (path: string) => string, fd: number, path: string): boolean {
  try {
    return readlink(`/proc/self/fd/${fd}`) === path;
  } catch {
    return false;
  }
}
