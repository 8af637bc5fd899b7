// A node:test reporter for `npm test -- --file-times=<file>` (scripts/run-tests.mjs): one line per test file,
// "<seconds> <path>", slowest first, the path as under the checkout. Node 20 reports each file as a test of its own
// (its name and file both the file's path) whose duration is the file's whole wall time, its node process's start
// included; the spec reporter shows no file names. For finding where the suite's time goes: under load the figures
// grow, rank them rather than trust them.
const MIRRORED = /^.*?\/\.test-build\/\d+\//;

export default async function* fileTimes(source) {
  const times = [];
  for await (const event of source) {
    if (event.type !== 'test:complete') continue;
    const { name, file, nesting, details } = event.data;
    if (nesting !== 0 || file === undefined || name !== file) continue;
    times.push([details.duration_ms / 1000, file.replace(MIRRORED, '').replace(/\.js$/, '.ts')]);
  }
  times.sort((a, b) => b[0] - a[0]);
  for (const [seconds, path] of times) yield `${seconds.toFixed(1)} ${path}\n`;
}
