// A node:test reporter for `npm test -- --file-times=<file>` (scripts/run-tests.mjs): one line per test file,
// "<seconds> <path> (outside tests <seconds>)", slowest first, the path as under the checkout. Node 20 reports each
// file as a test of its own (its name and file both the file's path) whose duration is the file's whole wall time,
// its node process's start included; the spec reporter shows no file names. "Outside tests" is that wall time less
// its top-level tests' own: the process's start, file-level before/after hooks, and the time the process took to
// exit after its last test (a timer or socket left open holds it; one such file held a slot for a minute). For
// finding where the suite's time goes: under load the figures grow, rank them rather than trust them.
// In a batch (scripts/test-batch.mjs) a file is a suite named after it, timed by the batch itself from its import to
// its last after() hook (run-tests.mjs adds those lines); here, a "batch" line gives each batch's whole time, and
// what it has beyond its files' is its process's start and exit.
const MIRRORED = /^.*?\/\.test-build\/\d+\//;
const BATCH_ENTRY = /\/\.batches\/[^/]+\.batch\.test\.mjs$/;
/** Where a batched file's suite is declared (its `file`): the batch driver. */
const BATCH_DRIVER = /\/scripts\/test-batch\.mjs$/;

export default async function* fileTimes(source) {
  const times = [];
  const inTests = new Map();
  for await (const event of source) {
    if (event.type !== 'test:complete') continue;
    const { name, file, nesting, details } = event.data;
    if (file === undefined) continue;
    if (nesting !== 0) continue;
    // The checkout's path of the file: a test's `file` is its source (.ts, by the source map), the file's own entry
    // names the compiled .js.
    const path = file.replace(MIRRORED, '').replace(/\.js$/, '.ts');
    if (BATCH_ENTRY.test(file)) {
      times.push([details.duration_ms / 1000, `batch ${path.replace(/^.*\//, '')}`, 'its process, start and exit included']);
      continue;
    }
    // One file of a batch, its suite: timed in its own process (test-batch.mjs), the suite's duration leaving out most
    // of its import, and its events reaching a reporter only once the files before it are reported.
    if (BATCH_DRIVER.test(file)) continue;
    // A file's top-level tests and suites are at nesting 0 too, beside the file's own entry (named as the file).
    if (name !== file) {
      inTests.set(path, (inTests.get(path) ?? 0) + details.duration_ms);
      continue;
    }
    times.push([details.duration_ms / 1000, path]);
  }
  times.sort((a, b) => b[0] - a[0]);
  for (const [seconds, path, note] of times) {
    const outside = seconds - (inTests.get(path) ?? 0) / 1000;
    yield `${seconds.toFixed(1)} ${path} (${note ?? `outside tests ${outside.toFixed(1)}`})\n`;
  }
}
