// A short run of the gRPC fuzz target (`npm run fuzz -- --target grpc` is the long one): generated gRPC calls, well
// formed or not, through a TLS gateway to an h2c Echo backend. With request_body_chunk at 2 s, below the driver's 6 s
// patience, every call ends before the driver gives up: a call its client leaves open is cut by the gateway's bound,
// so a stall of any owner here is a stream the gateway held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runGrpcFuzz } from '../../fuzz/grpc-harness.js';

/** A fixed seed, as test/fuzz/fuzz-short's: a failure is a change in the gateway, not a new draw. */
const SEED = Number(process.env.FUZZ_SEED ?? '12345');

test('a few seconds of generated gRPC calls: every call ends, no stream held, alive, /health 200, gauges back at 0', { timeout: 120_000 }, async () => {
  const report = await runGrpcFuzz({ durationMs: 4_000, concurrency: 8, seed: SEED, requestBodyChunk: '2s', caseTimeoutMs: 6_000 });
  assert.deepEqual(report.failures, [], `seed ${report.seed}: ${JSON.stringify(report.outcomes)}`);
  assert.deepEqual(report.stalls, { 'open-call': 0, backend: 0, gateway: 0 }, JSON.stringify(report.stalledExamples));
  assert.ok(report.cases >= 20, `only ${report.cases} calls ran`);
  assert.ok((report.outcomes['grpc-0'] ?? 0) > 0, 'well-formed calls succeeded');
  assert.ok((report.outcomes['grpc-13'] ?? 0) + (report.outcomes['grpc-12'] ?? 0) > 0, 'malformed calls were refused by the backend, the gRPC way');
});
