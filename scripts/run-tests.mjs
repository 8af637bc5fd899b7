// Runs every *.test.ts under src/, test/ and examples/ with node:test, compiled first into the mirror under
// .test-build/<pid>/ (scripts/build-tests.mjs: Node 20 cannot strip types itself, and tsx cost each file about 1.5 CPU-s).
// Extra arguments narrow the run: `npm test -- balancer` runs the files whose path contains "balancer".
// `npm test -- --file-times=<file>` also writes each file's wall time there, slowest first (file-times-reporter.mjs).
// A single file can still run from its source: `node --import tsx --test <file>`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { buildTests, removeMirror } from './build-tests.mjs';

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
const filters = args.filter((a) => !a.startsWith('--file-times='));
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
// the run until CI's own limit. Node 20 applies --test-timeout to each file as a whole (and to each test in it).
const CONCURRENCY = Math.min(8, 2 * availableParallelism());
// Stack traces are mapped to the TypeScript sources, as tsx maps them.
const mirror = await buildTests();
const compiled = selected.map((file) => join(mirror, file.replace(/\.ts$/, '.js')));
// Files start in path order (node 20's --test sorts the files it is given). Slowest first would gain nothing worth a
// driver of our own: simulated on three slots from the times of all 443 files (2026-12-05, load 10 to 19), 2,967 s
// against 2,975 s in path order; the slowest files (the CLI-heavy ones) fall mid-way in the path order, not last.
const reporters = fileTimes === undefined
  ? ['--test-reporter=spec']
  : ['--test-reporter=spec', '--test-reporter-destination=stdout',
      `--test-reporter=${resolve('scripts/file-times-reporter.mjs')}`, `--test-reporter-destination=${resolve(fileTimes)}`];
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', `--test-concurrency=${CONCURRENCY}`, '--test-timeout=600000', ...reporters, ...compiled],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
removeMirror(mirror);
process.exit(result.status ?? 1);
