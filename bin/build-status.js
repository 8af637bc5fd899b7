// Which build of the command line a checkout runs: the bundle, the compiled dist/, or the TypeScript sources. Shared
// by bin/portcullis.js, which picks its entry point with it, and the benchmarks, which build first rather than
// measure a gateway that tsx compiles from source. Node's fs only: bin/portcullis.js imports this before start-up.
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * True when some file under `dir` (tests aside) was modified after `since` (ms). About 1 ms for ~100 files. lstat, not
 * stat: an editor's lock file (Emacs's `.#name`) is a symlink to nowhere, and counts as an edit under way.
 */
function changedSince(dir, since) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (changedSince(path, since)) return true;
    } else if (!entry.name.endsWith('.test.ts') && lstatSync(path).mtimeMs > since) {
      return true;
    }
  }
  return false;
}

/**
 * What `root` (a file: URL ending in /) runs: 'bundle' (dist/bundle/cli.js), 'dist' (dist/cli.js) or 'source'
 * (src/cli.ts through tsx).
 * - dist/ runs while it is up to date with src/ (`npm ci` builds it through `prepare`; a built image has no src/ at
 *   all), so an edit under src/ is never shadowed by a stale build.
 * - Of dist/, the bundle runs unless a package was installed after the build: it carries its own copies of some
 *   libraries (zod, yaml, jose, OpenTelemetry), and `npm update` or `npm install <pkg>` do not run `prepare`;
 *   dist/cli.js, which imports them from node_modules, then runs until the next build.
 */
export function buildToRun(root) {
  const sourceDir = new URL('src/', root);
  const stamp = new URL('dist/.build-stamp', root);
  if (existsSync(sourceDir)) {
    if (!existsSync(stamp)) return 'source'; // never built, or a build failed half-way
    if (changedSince(fileURLToPath(sourceDir).replace(/\/$/, ''), statSync(stamp).mtimeMs)) return 'source';
  }
  if (!existsSync(new URL('dist/bundle/cli.js', root))) return 'dist';
  const installed = new URL('node_modules/.package-lock.json', root); // npm rewrites it at every install
  const bundleCurrent = !existsSync(stamp) || !existsSync(installed) || statSync(installed).mtimeMs <= statSync(stamp).mtimeMs;
  return bundleCurrent ? 'bundle' : 'dist';
}

/** The module `buildToRun(root)` names. */
export function entryPoint(root, build = buildToRun(root)) {
  return new URL(build === 'bundle' ? 'dist/bundle/cli.js' : build === 'dist' ? 'dist/cli.js' : 'src/cli.ts', root);
}
