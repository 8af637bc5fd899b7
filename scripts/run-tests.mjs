// Runs every *.test.ts under src/, test/ and examples/ with node:test, compiled first into the mirror under
// .test-build/<pid>/ (scripts/build-tests.mjs: Node 20 cannot strip types itself, and tsx cost each file about 1.5 CPU-s).
// Extra arguments narrow the run: `npm test -- balancer` runs the files whose path contains "balancer".
// Four files share a node process (see DEFAULT_BATCH_SIZE); `npm test -- --no-batch` runs each in a process of its own.
// `npm test -- --file-times=<file>` also writes each file's wall time there, slowest first (file-times-reporter.mjs).
// A single file can still run from its source: `node --import tsx --test <file>`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildTests, removeMirror } from './build-tests.mjs';
import { buildToRun } from '../bin/build-status.js';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) {
      if (name !== 'node_modules') collect(full, out);
    } else if (name.endsWith('.test.ts')) {
      out.push(relative(process.cwd(), full));
    }
  }
  return out;
}

const args = process.argv.slice(2);
const fileTimes = args.find((a) => a.startsWith('--file-times='))?.slice('--file-times='.length);
const batched = !args.includes('--no-batch');
// --batch-size=N groups the files otherwise: files that disturb each other in one process (state one leaves in a
// module both load) show up in another grouping. --batch, the default since 2026-12-06, is still accepted.
// Four files per node process (scripts/test-batch.mjs): most of what a process of its own costs is saved (its start
// and module compilation, once a batch instead of once a file), and batches stay short enough that four slots share
// the run's end evenly. Measured 2026-12-06 on this 2-core machine: 748 s and 1,123 CPU-s (user + sys of the whole
// tree) for the whole suite, 175 processes instead of 569; the runs before it without batches took 843 to 980 s.
// The batched runs' different timing found two defects the unbatched ones had not: a gateway signalled between its
// proxy port's opening and the end of its start-up died by the signal (src/stop-signal.ts), and
// review11-kv-replica-foreign-data's own race, both fixed; and, once a new file moved the batches' boundaries, a
// product defect: undici loaded by one file left the next file's gateway without its HTTP/2 head bounds. Four
// fresh-clone CIs in this mode that day each failed one test its timing brought out (a Redis marker race, a lost
// pretty Stop Forced line, a timing comparison between two files' loads, a registration's 2 s bound), each fixed.
const DEFAULT_BATCH_SIZE = 4;
const BATCH_SIZE = Number(args.find((a) => a.startsWith('--batch-size='))?.slice('--batch-size='.length) ?? DEFAULT_BATCH_SIZE);
if (!Number.isInteger(BATCH_SIZE) || BATCH_SIZE < 1) {
  console.error('--batch-size takes a whole number from 1');
  process.exit(1);
}
const isOption = (a) => a.startsWith('--file-times=') || a.startsWith('--batch-size=') || a === '--batch' || a === '--no-batch';
const filters = args.filter((a) => !isOption(a));
const files = collect('examples', collect('src', collect('test', []))).sort();
const selected = filters.length === 0 ? files : files.filter((f) => filters.some((x) => f.includes(x)));
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// Two files per core (four on two cores), at most eight: beyond that the files' own PostgreSQL pools could reach the
// server's 100 connections, and no machine this was measured on had more than two cores. A file's time is partly its
// own start (node and the gateway's modules, about 0.4 CPU-s) and partly waiting (timeouts, servers starting, real
// bounds such as the admin port's 30 s), so more files than cores keep the cores busy. On this 2-core machine: one at
// a time, about 16 minutes; two, about 9 (grown to 15.3 by 2026-12-04); three, 13.1 that day and 16.1 on 2026-12-06
// (964 s, 2,491 tests, 17 % of the CPU idle); four, 14.0 (843 s) in the next hour, 8 % idle, every test passing.
// Files may share PostgreSQL and Redis because each keeps to its own databases, schemas, key prefixes and ports (never
// FLUSHDB or a fixed name), and their timing margins were made for a noisy shared machine (load 6 with four). A test
// file that hangs (a process that never exits, a promise that never settles) fails after 10 minutes instead of holding
// the run until CI's own limit. Node 20 applies --test-timeout to each process as a whole (a file, or a batch of them),
// and to each suite and test in it (a batched file is a suite).
const CONCURRENCY = Math.min(8, 2 * availableParallelism());
/** Files under these run alone: they build or launch things whose cost is their own (a browser, a package, fuzzing). */
const RUNS_ALONE_DIRS = ['test/browser/', 'test/package/', 'test/fuzz/'];
/**
 * A file whose source touches process-wide state runs alone: the working directory, process listeners or exit
 * status, mocked timers or methods, globals, the process's own memory or handles. In a batch it would reach the
 * files after it (or they it).
 */
const PROCESS_WIDE = new RegExp(
  [
    'process\\.chdir', 'process\\.exit', 'process\\.on\\(', 'process\\.once\\(', 'process\\.env\\.[\\w$]+\\s*=[^=]',
    'process\\.env\\[[^\\]]+\\]\\s*=[^=]', 'delete process\\.env', 'process\\.setMaxListeners', 'process\\.umask',
    'process\\.title', 'process\\.stdin', 'process\\.kill\\(process\\.pid', 'mock\\.timers', 'mock\\.method',
    'Object\\.assign\\(process\\.env', 'process\\.env\\.[\\w$]+\\s*\\?\\?=', 'globalThis', 'memoryUsage', '/proc/self',
    'getActive', 'heapUsed', 'setDefaultResultOrder', 'setGlobalDispatcher',
    // What counts this process's children or threads would count those an earlier file left (or is still reaping).
    'process\\.pid', 'hash-children',
    // A file that says so: one whose premise is the order its own imports load modules in, say.
    'npm test: runs alone',
  ].join('|'),
);
// The gateways the tests spawn run the checkout's dist/ only while it is up to date with src/ (bin/build-status.js):
// after an edit they would run the sources through tsx, a second slower to start, 40 MB larger and with tsx's loader
// thread, and the tests that time or trace start-up fail for that alone. So a stale build is built first, as
// `npm run bench` does (a clean checkout's `npm ci` has built it).
if (buildToRun(pathToFileURL(`${process.cwd()}/`).href) !== 'bundle') {
  console.error('npm test: dist/ is older than src/ (or packages were installed since): npm run build');
  const build = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
  if (build.status !== 0) process.exit(1);
}
// Stack traces are mapped to the TypeScript sources, as tsx maps them.
const mirror = await buildTests();
/** Where a test file's compiled copy is in the mirror. */
const mirrored = (file) => join(mirror, file.replace(/\.ts$/, '.js'));
const compiled = batched ? batchFiles(selected) : selected.map(mirrored);
// Files start in path order (node 20's --test sorts the files it is given). Slowest first would gain nothing worth a
// driver of our own: simulated on three slots from the times of all 443 files (2026-12-05, load 10 to 19), 2,967 s
// against 2,975 s in path order; the slowest files (the CLI-heavy ones) fall mid-way in the path order, not last.
const reporters = fileTimes === undefined
  ? ['--test-reporter=spec']
  : ['--test-reporter=spec', '--test-reporter-destination=stdout',
      `--test-reporter=${resolve('scripts/file-times-reporter.mjs')}`, `--test-reporter-destination=${resolve(fileTimes)}`];
/**
 * The entries node:test runs: consecutive files in path order grouped BATCH_SIZE to a node process
 * (scripts/test-batch.mjs says why and how), except the files that touch process-wide state, each alone.
 * `--no-batch` runs every file alone.
 */
function batchFiles(files) {
  const entries = [];
  let batch = [];
  const flush = () => {
    if (batch.length === 1) entries.push(mirrored(batch[0]));
    else if (batch.length > 1) entries.push(writeBatch(entries.length, batch));
    batch = [];
  };
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    if (RUNS_ALONE_DIRS.some((dir) => file.startsWith(dir)) || PROCESS_WIDE.test(source)) {
      entries.push(mirrored(file));
      continue;
    }
    batch.push(file);
    if (batch.length === BATCH_SIZE) flush();
  }
  flush();
  return entries;
}

/** Adds each batched file's line ("<seconds> <path> (in a batch)") to the reporter's, all slowest first. */
function mergeBatchTimes(out, written) {
  let batched = [];
  try {
    batched = readFileSync(written, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
  } catch {
    return; // no batch ran
  }
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
  for (const { name, ms } of batched) lines.push(`${(ms / 1000).toFixed(1)} ${name} (in a batch)`);
  lines.sort((a, b) => parseFloat(b) - parseFloat(a));
  writeFileSync(out, `${lines.join('\n')}\n`);
}

/** Writes the entry that runs `files` (source paths, relative to the checkout) in one process; returns its path. */
function writeBatch(index, files) {
  const dir = join(mirror, '.batches');
  mkdirSync(dir, { recursive: true });
  // Named after its first file, so a batch that fails as a whole (a crash, the 10-minute limit) says where to look.
  const entry = join(dir, `${String(index).padStart(3, '0')}-${files[0].replace(/[/\\]/g, '_').replace(/\.ts$/, '.batch.test.mjs')}`);
  const named = files.map((file) => ({ name: file, url: pathToFileURL(resolve(mirrored(file))).href }));
  const batchDriver = pathToFileURL(resolve('scripts/test-batch.mjs')).href;
  // test/helpers/backends.js stops, at the end of a file, the backends its failed tests left running (so the process
  // can exit); it registers that once, at its first import. In a batch it is imported first, from here, and asked at
  // the end of each file.
  const backends = pathToFileURL(resolve(mirror, 'test/helpers/backends.js')).href;
  writeFileSync(
    entry,
    `import { runInTurn } from ${JSON.stringify(batchDriver)};\n` +
      `import { stopLeftoverBackends } from ${JSON.stringify(backends)};\n` +
      `await runInTurn(${JSON.stringify(named)}, stopLeftoverBackends);\n`,
  );
  return entry;
}

// Each batched file's time, written by its batch (test-batch.mjs), merged into the reporter's lines below.
const batchTimes = fileTimes === undefined ? undefined : join(mirror, 'batch-times.jsonl');
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', `--test-concurrency=${CONCURRENCY}`, '--test-timeout=600000', ...reporters, ...compiled],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', ...(batchTimes ? { PORTCULLIS_TEST_BATCH_TIMES: batchTimes } : {}) } },
);
if (fileTimes !== undefined && batchTimes !== undefined) mergeBatchTimes(fileTimes, batchTimes);
removeMirror(mirror);
process.exit(result.status ?? 1);
