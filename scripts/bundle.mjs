// Bundles the command line into dist/bundle/ (called by build.mjs after tsc), which bin/portcullis.js runs in
// preference to dist/cli.js. Why: Node 20's ES module loader spends about a fifth of a millisecond per file on
// resolving, reading and linking, and a gateway starts with about 430 files (ours, zod, yaml, jose, the OpenTelemetry
// API). Bundled, start-up is about 100 ms shorter (bench/startup.ts). dist/*.js stays for the package's exports
// (`portcullis`, `portcullis/testing`) and for the plugins that import them.
//
// - Code splitting keeps what the gateway imports lazily (the SQLite and PostgreSQL stores, auth, tracing, the
//   subcommands) in chunks of its own, loaded only when a configuration uses it, as it was unbundled.
// - Only the packages bundled() names are inlined. The others stay in node_modules: native addons (argon2,
//   better-sqlite3); pino, whose pretty printer runs in a worker thread that loads files by path; undici and
//   prom-client, which the gateway loads file by file through createRequire (src/balancer/undici.ts,
//   src/observability/prom-client.ts); and libraries that only a configuration's option loads (pg, redis,
//   light-my-request).
// - Every chunk sits flat in dist/bundle/, so the module-relative URLs of the sources resolve there: hash-child.js
//   is an entry of its own, and the dashboard's files are copied next to the chunks.
// - Chunks are written ASCII only where that changes no code. esbuild escapes non-ASCII characters in strings,
//   templates and names, but keeps the comments it retains as they are, and V8 stores a module's source as a
//   string for as long as the process runs: one em dash in a comment makes it a two-byte string of twice the size
//   (about 400 KB of heap for the chunks loaded at start-up). Each such character becomes "?" (one UTF-16 unit for
//   one, so the source maps' columns still hold), but only when the chunk without its comments is the same after
//   as before: regex literals and tagged templates keep non-ASCII characters as written, and a chunk holding one
//   is written unchanged, with a warning.
// - Whitespace is minified (not names: error classes and the log's field names keep theirs). V8 scans the whole
//   source of a module before it runs and keeps that source for as long as the process runs, so indentation and
//   comments cost start-up and heap: about 27 % less source; two runs of bench/startup.ts --against measured start-up
//   at 0.90-1.00 of before (CPU) and 0.3-0.5 MB less idle RSS. Unlike a full minify, no name is kept by a wrapper
//   call (esbuild's keepNames), which made start-up slower. Source maps still point into src/.
// - dist/bundle/packages.json names the packages inlined in each chunk, for the test that checks which libraries a
//   configuration loads (test/e2e/lazy-imports.test.ts).
import { build, transform } from 'esbuild';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const BUNDLE_DIR = 'dist/bundle';

/** Pure JavaScript packages loaded at start-up or by auth: inlined, with every @opentelemetry package (tracing). */
const BUNDLED = new Set(['zod', 'yaml', 'jose']);
const bundled = (name) => BUNDLED.has(name) || name.startsWith('@opentelemetry/');

/** The package a bare import specifier names ("@scope/name/sub" → "@scope/name"). */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Builds dist/bundle/ from src/. */
export async function bundle() {
  // Built beside the old bundle and swapped in at the end: a gateway running from dist/bundle/ while this builds
  // (its first login forks hash-child.js) never finds the directory half written. Chunk names carry a hash, so
  // the old directory goes as a whole rather than piling up.
  const next = `${BUNDLE_DIR}.next`;
  rmSync(next, { recursive: true, force: true });
  const result = await build({
    entryPoints: { cli: 'src/cli.ts', 'hash-child': 'src/auth/hash-child.ts' },
    outdir: next,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minifyWhitespace: true,
    sourcemap: 'linked',
    metafile: true,
    write: false,
    logLevel: 'warning',
    // The CommonJS packages inlined (yaml) call require() for Node's builtins; an ES module has no require.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    plugins: [
      {
        name: 'portcullis-externals',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => (bundled(packageOf(args.path)) ? undefined : { external: true }));
        },
      },
    ],
  });
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.path.endsWith('.js') ? await asciiOnly(file.text, file.path) : file.contents);
  }
  cpSync('src/admin/dashboard', `${next}/dashboard`, { recursive: true });
  writeFileSync(`${next}/packages.json`, `${JSON.stringify(packagesPerChunk(result.metafile, next), null, 1)}\n`);
  const old = `${BUNDLE_DIR}.old`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(BUNDLE_DIR)) renameSync(BUNDLE_DIR, old);
  renameSync(next, BUNDLE_DIR);
  rmSync(old, { recursive: true, force: true });
}

/**
 * `code` with every UTF-16 unit past ASCII replaced by "?", when those were all in comments: the code with its
 * comments and whitespace stripped must not change. Otherwise `code` as it was.
 */
async function asciiOnly(code, path) {
  if (!/[^\x00-\x7f]/.test(code)) return code;
  const replaced = code.replace(/[^\x00-\x7f]/g, '?');
  const stripped = async (text) => (await transform(text, { format: 'esm', minifyWhitespace: true, legalComments: 'none' })).code;
  if ((await stripped(replaced)) === (await stripped(code))) return replaced;
  console.warn(`bundle: ${path} has non-ASCII characters outside comments; written as it is (a two-byte source in V8)`);
  return code;
}

/** { "chunk-X.js": ["zod", ...] } from esbuild's metafile. */
function packagesPerChunk(metafile, dir) {
  const chunks = {};
  for (const [output, { inputs }] of Object.entries(metafile.outputs)) {
    if (!output.endsWith('.js')) continue;
    const packages = new Set();
    for (const input of Object.keys(inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (match !== null) packages.add(match[1]);
    }
    chunks[output.slice(dir.length + 1)] = [...packages].sort();
  }
  return chunks;
}
