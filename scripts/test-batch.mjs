// Runs several test files in one node process, one after another: what `npm test` does (`-- --no-batch` does not),
// for which scripts/run-tests.mjs writes a small entry per batch that calls this. Why: a test file's own process costs about
// 0.5 CPU-s before its first test, mostly node compiling the gateway's modules and the test helpers' (measured
// 2026-12-06: 0.65 CPU-s to import test/helpers/gateway.js against 0.11 for an empty file); in one process each
// module is compiled once a batch.
//
// Each file is imported inside a suite of its own, named after it: its top-level tests and hooks (before, after,
// beforeEach, afterEach) become that suite's, so they apply to its tests alone, its after() hooks have run before the
// next file starts, and a hook that fails fails that file only. As node:test builds a suite before running it, a
// file's tests start once its top-level code has run, top-level awaits included. What a suite does not isolate —
// process-wide state such as the working directory, process listeners, mocked timers, the environment —
// run-tests.mjs keeps out of batches: a file that touches it runs alone.
import { appendFileSync } from 'node:fs';
import { after, describe } from 'node:test';

/**
 * Runs each file's tests in turn, in a suite named `name` (its path in the checkout). `afterEachFile` runs after
 * each file's own after() hooks: the safety nets that a helper module registers once, when the first file imports it.
 */
export async function runInTurn(files, afterEachFile) {
  for (const { name, url } of files) {
    const started = performance.now();
    await describe(name, async () => {
      await import(url);
      after(afterEachFile);
      if (TIMES_FILE !== undefined) after(() => appendFileSync(TIMES_FILE, `${JSON.stringify({ name, ms: performance.now() - started })}\n`));
    });
  }
}

/**
 * Where `npm test -- --file-times=…` wants each batched file's wall time, from its import to its last after() hook
 * (run-tests.mjs sets it): the reporter cannot time a file itself, as node:test holds a file's events back until the
 * files before it are reported.
 */
const TIMES_FILE = process.env.PORTCULLIS_TEST_BATCH_TIMES;
