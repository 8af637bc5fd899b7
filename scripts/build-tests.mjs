// Compiles src/, test/, examples/ and fuzz/ into a mirror of the checkout under .test-build/<pid>/, which `npm test` runs with
// plain node instead of through tsx. Why: Node 20 cannot strip types, and tsx's loader runs its hooks on a thread of
// their own with a round trip per module; each test file is a node process of its own, and loading tsx and the
// gateway's modules through it took about 1.5 CPU-s more per file than the same modules compiled (346 files).
//
// The mirror keeps the checkout's layout, so the paths tests build from import.meta.url (fixtures, bin/, config/,
// README.md, another test's helper) resolve as they do in the checkout:
// - under those directories, every .ts file is compiled to .js beside a copy of itself (tests that spawn a
//   TypeScript entry through tsx, or read a source file, find it), and every other file is copied;
// - every other entry of the checkout's root (bin/, config/, dist/, node_modules/, package.json, README.md, …) is a
//   symbolic link to the real one, so a gateway spawned through bin/ runs the checkout's dist/ as before.
// Each run builds a mirror of its own, removed when it ends: several `npm test -- <filter>` may run at once.
// esbuild compiles file by file, as tsx does (same compiler, same options), so a compiled test behaves as it did
// through tsx. The imports of the package's own name ('portcullis', 'portcullis/testing'), which tsx resolved through
// tsconfig.json's paths to the sources, are pointed at the compiled sources.
import { transform } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';

const MIRRORS = '.test-build';
// fuzz/ too: test/fuzz imports its harness.
const COMPILED_DIRS = ['src', 'test', 'examples', 'fuzz'];
/** Root entries that are neither linked nor compiled. */
const SKIPPED = new Set(['.git', MIRRORS, ...COMPILED_DIRS]);
/** tsx hands esbuild the checkout's tsconfig.json: the same compiler options here. */
const TSCONFIG = readFileSync('tsconfig.json', 'utf8');
const SELF_IMPORTS = { portcullis: 'src/index.js', 'portcullis/testing': 'src/testing.js' };

/**
 * Builds this process's mirror (about a second of CPU for the whole checkout) and returns its directory. Mirrors
 * left by runs that were killed are removed first.
 */
export async function buildTests() {
  removeDeadMirrors();
  const mirror = join(MIRRORS, String(process.pid));
  rmSync(mirror, { recursive: true, force: true });
  mkdirSync(mirror, { recursive: true });
  for (const name of readdirSync('.')) {
    if (!SKIPPED.has(name)) symlinkSync(resolve(name), join(mirror, name));
  }
  const jobs = [];
  for (const dir of COMPILED_DIRS) for (const file of walk(dir)) jobs.push(mirrorFile(mirror, file));
  await Promise.all(jobs);
  return mirror;
}

export function removeMirror(mirror) {
  rmSync(mirror, { recursive: true, force: true });
}

function removeDeadMirrors() {
  if (!existsSync(MIRRORS)) return;
  for (const name of readdirSync(MIRRORS)) {
    if (!alive(Number(name))) rmSync(join(MIRRORS, name), { recursive: true, force: true });
  }
}

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') yield* walk(path);
    } else if (entry.isFile()) {
      yield path;
    }
  }
}

async function mirrorFile(mirror, file) {
  const target = join(mirror, file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
  if (!file.endsWith('.ts') || file.endsWith('.d.ts')) return;
  const source = readFileSync(file, 'utf8');
  const { code } = await transform(source, {
    loader: 'ts',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // The map names the .ts copy beside the output, so mapped stack traces name src/…/x.ts as under tsx.
    sourcefile: basename(file),
    // Inline, so a failing test's stack trace can be mapped (node --enable-source-maps) without a file beside it.
    sourcemap: 'inline',
    tsconfigRaw: TSCONFIG,
  });
  writeFileSync(target.replace(/\.ts$/, '.js'), pointSelfImports(code, file));
}

/** Rewrites `"portcullis"` and `"portcullis/testing"` module specifiers to the compiled sources, relative to `file`. */
function pointSelfImports(code, file) {
  return code.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)"(portcullis(?:\/testing)?)"/g, (_all, lead, name) => {
    let path = relative(dirname(file), SELF_IMPORTS[name]);
    if (!path.startsWith('.')) path = `./${path}`;
    return `${lead}"${path}"`;
  });
}
