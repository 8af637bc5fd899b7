// `npm run build` (and `prepare`, which `npm ci` runs): compiles src/ into dist/, copies the dashboard assets, bundles
// the command line into dist/bundle/ (scripts/bundle.mjs), then writes dist/.build-stamp. The stamp's mtime is the
// moment the build started: bin/portcullis.js runs dist/ only while no file under src/ is newer than that, so an
// edit made during or after a build falls back to tsx.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const STAMP = 'dist/.build-stamp';
const prepare = process.argv.includes('--prepare');

// `prepare` also runs where there is nothing to build: `npm ci --omit=dev` (no TypeScript) and the Dockerfile's
// dependency stages (package.json only, no src/). Those skip quietly; an explicit `npm run build` fails instead.
if (prepare && (!existsSync('src/cli.ts') || !resolves('typescript/bin/tsc'))) {
  process.stdout.write('portcullis: prepare: no src/ or no TypeScript here, dist/ not built\n');
  process.exit(0);
}

const startedAt = new Date();
rmSync(STAMP, { force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// The files tsc does not emit.
cpSync('src/admin/dashboard', 'dist/admin/dashboard', { recursive: true });
// The start-up bundle bin/portcullis.js runs. Imported here, not at the top: esbuild is a dev dependency, absent
// where `prepare` skips the build.
const { bundle } = await import('./bundle.mjs');
await bundle();
mkdirSync('dist', { recursive: true });
writeFileSync(STAMP, `${startedAt.toISOString()}\n`);
utimesSync(STAMP, startedAt, startedAt);

function resolves(specifier) {
  try {
    createRequire(import.meta.url).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}
