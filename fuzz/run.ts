// `npm run fuzz [-- --duration 60s --seed N --concurrency 32]`: the long fuzz run; prints its counts, exits 1 on a failure.
import { parseDuration } from '../src/config/duration.js';
import { runFuzz } from './harness.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

const durationMs = parseDuration(option('duration') ?? '60s') ?? 60_000;
const seed = option('seed') === undefined ? undefined : Number(option('seed'));
const concurrency = option('concurrency') === undefined ? undefined : Number(option('concurrency'));

const report = await runFuzz({ durationMs, seed, concurrency }).catch((err: unknown) => {
  console.error(`fuzz: could not run: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
console.log(JSON.stringify(report, null, 2));
if (report.failures.length > 0) {
  console.error(`fuzz: FAILED (seed ${report.seed}):\n- ${report.failures.join('\n- ')}`);
  process.exit(1);
}
console.log(`fuzz: ${report.cases} cases in ${Math.round(report.durationMs / 1000)} s, all guarantees held (seed ${report.seed})`);
