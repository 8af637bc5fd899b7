// `npm run fuzz [-- --duration 60s --seed N --concurrency 32]`: the long fuzz run; prints its counts, exits 1 on a failure.
// `--target grpc` runs the gRPC target instead (grpc-harness.ts: gRPC calls over TLS h2 to an h2c Echo backend; also
// `--case-timeout 6s`, how long a call may stay open before the driver gives up on it and judges whose stall it is,
// and `--body-chunk 2s`, the gateway's request_body_chunk).
import { parseDuration } from '../src/config/duration.js';
import { runFuzz } from './harness.js';
import { runGrpcFuzz } from './grpc-harness.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

const durationMs = parseDuration(option('duration') ?? '60s') ?? 60_000;
const seed = option('seed') === undefined ? undefined : Number(option('seed'));
const concurrency = option('concurrency') === undefined ? undefined : Number(option('concurrency'));

const target = option('target') ?? 'http1';
if (target !== 'http1' && target !== 'grpc') {
  console.error(`fuzz: unknown --target ${target} (http1 or grpc)`);
  process.exit(2);
}
const caseTimeoutMs = option('case-timeout') === undefined ? undefined : parseDuration(option('case-timeout')!);
const requestBodyChunk = option('body-chunk');

const run = target === 'grpc' ? runGrpcFuzz({ durationMs, seed, concurrency, caseTimeoutMs, requestBodyChunk }) : runFuzz({ durationMs, seed, concurrency });
const report = await run.catch((err: unknown) => {
  console.error(`fuzz: could not run: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
console.log(JSON.stringify(report, null, 2));
if (report.failures.length > 0) {
  console.error(`fuzz: FAILED (seed ${report.seed}):\n- ${report.failures.join('\n- ')}`);
  process.exit(1);
}
console.log(`fuzz (${target}): ${report.cases} cases in ${Math.round(report.durationMs / 1000)} s, all guarantees held (seed ${report.seed})`);
