// Which build bin/portcullis.js runs (bin/build-status.js), on throwaway checkouts whose file times are set by hand.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { buildToRun, entryPoint } from '../../bin/build-status.js';

/** Writes `file` under `root` with its modification time `ageS` seconds ago. */
function put(root: string, file: string, ageS: number): void {
  const path = join(root, file);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '');
  const at = new Date(Date.now() - ageS * 1000);
  utimesSync(path, at, at);
}

/** A checkout under a directory whose name has a space (a file: URL spells it %20). */
function checkout(files: Record<string, number>): URL {
  const root = mkdtempSync(join(tmpdir(), 'portcullis build-status-'));
  for (const [file, ageS] of Object.entries(files)) put(root, file, ageS);
  return pathToFileURL(`${root}/`);
}

test('a checkout built after its last edit and install runs the bundle', (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'src/proxy/forward.ts': 200, 'node_modules/.package-lock.json': 400, 'dist/.build-stamp': 100, 'dist/bundle/cli.js': 100 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(buildToRun(root), 'bundle');
  assert.equal(entryPoint(root).href, new URL('dist/bundle/cli.js', root).href);
});

test('an edit under src/ after the build runs the sources, however deep the file; an edited test file does not count', (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'src/proxy/forward.test.ts': 10, 'dist/.build-stamp': 100, 'dist/bundle/cli.js': 100 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(buildToRun(root), 'bundle');
  put(fileURLPath(root), 'src/proxy/deep/forward.ts', 10);
  assert.equal(buildToRun(root), 'source');
  assert.equal(entryPoint(root).href, new URL('src/cli.ts', root).href);
});

test("an editor's lock file (a symlink to nowhere) counts as an edit and does not crash the check", (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'dist/.build-stamp': 100, 'dist/bundle/cli.js': 100 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  symlinkSync('user@host.1234:1700000000', join(fileURLPath(root), 'src/.#cli.ts'));
  assert.equal(buildToRun(root), 'source');
});

test('built, but without the bundle (it failed or was removed): dist/cli.js', (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'dist/.build-stamp': 100, 'dist/cli.js': 100 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(buildToRun(root), 'dist');
});

test('never built, or a build that failed before its stamp: the sources', (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'dist/bundle/cli.js': 100 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(buildToRun(root), 'source');
});

test('a package installed after the build runs dist/cli.js, which imports node_modules, not the bundle with its own copies', (t) => {
  const root = checkout({ 'src/cli.ts': 300, 'dist/.build-stamp': 100, 'dist/bundle/cli.js': 100, 'node_modules/.package-lock.json': 10 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(buildToRun(root), 'dist');
  assert.equal(entryPoint(root).href, new URL('dist/cli.js', root).href);
});

test('a built image (no src/) runs the bundle, or dist/cli.js without one', (t) => {
  const image = checkout({ 'dist/.build-stamp': 100, 'dist/bundle/cli.js': 100, 'dist/cli.js': 100 });
  const noBundle = checkout({ 'dist/.build-stamp': 100, 'dist/cli.js': 100 });
  t.after(() => [image, noBundle].forEach((root) => rmSync(root, { recursive: true, force: true })));
  assert.equal(buildToRun(image), 'bundle');
  assert.equal(buildToRun(noBundle), 'dist');
});

function fileURLPath(root: URL): string {
  return fileURLToPath(root).replace(/\/$/, '');
}
