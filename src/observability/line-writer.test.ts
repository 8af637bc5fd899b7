// The line writer keeps every line, in order, through a real pipe; and counts what it had to drop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

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
