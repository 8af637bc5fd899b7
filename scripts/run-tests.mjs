// Runs every *.test.ts under src/, test/ and examples/ with node:test through tsx (Node 20 cannot strip types itself).
// Extra arguments narrow the run: `npm test -- balancer` runs the files whose path contains "balancer".
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

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

const filters = process.argv.slice(2);
const files = collect('examples', collect('src', collect('test', []))).sort();
const selected = filters.length === 0 ? files : files.filter((f) => filters.some((x) => f.includes(x)));
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// One file at a time: the suites start real servers and share PostgreSQL and Redis, and this machine has two cores.
// A test file that hangs (a process that never exits, a promise that never settles) fails after 10 minutes instead of
// holding the run until CI's own limit. Node 20 applies --test-timeout to each file as a whole (and to each test in
// it); the whole suite takes about 9 minutes, its slowest file well under 2.
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', '--test-reporter=spec', ...selected],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
