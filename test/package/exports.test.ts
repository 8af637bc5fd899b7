// The published surface: `portcullis` and `portcullis/testing` work as compiled JavaScript in plain node (no tsx),
// nothing else is importable, the types ship beside them, and after an embedded gateway's close() nothing keeps node alive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildToRun } from '../../bin/build-status.js';
import { childExit } from '../helpers/child-exit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-package-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `node <file>` in the package copy; a process still running after `timeoutMs` is killed (code null). */
function runNode(file: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    void childExit(child).then(({ code }) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Whether the checkout's dist/ is what a build would make now. bin/build-status.js only asks whether a file under src/
 * is newer than the build, which is what picking an entry point needs, not what a test of the build may trust: a build
 * setting changed since (tsconfig.build.json's `declaration: false` left the old .d.ts files passing the type check
 * below) and a source deleted or renamed since (no file is newer: the old .js stayed, and the copy passed while tsc
 * failed) made a stale dist/ pass. Both are caught here: the configs' mtimes, and every directory's under src/ (a
 * deletion, a rename or a new file changes its directory's). A false alarm (an editor's swap file) only costs a build.
 */
function distCurrent(checkout: URL): boolean {
  if (buildToRun(checkout) === 'source') return false;
  const built = statSync(new URL('dist/.build-stamp', checkout)).mtimeMs;
  if (['tsconfig.json', 'tsconfig.build.json'].some((name) => statSync(new URL(name, checkout)).mtimeMs > built)) return false;
  const dirChanged = (dir: string): boolean =>
    statSync(dir).mtimeMs > built || readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory() && dirChanged(join(dir, e.name)));
  return !dirChanged(fileURLToPath(new URL('src', checkout)));
}

before(() => {
  // A package as `npm ci` + `prepare` leaves it: package.json, compiled dist/, dependencies. The checkout's own dist/
  // is that build when it is up to date with src/ (bin/build-status.js, as bin/portcullis.js decides): copied, not
  // built again (tsc took about 15 CPU-s of the suite). Built here when src/ changed since, so an edit is tested.
  // The checkout itself, not npm test's compiled mirror of it (whose src/ is always newer than the build): the mirror
  // links package.json and dist/ to the checkout's.
  const checkout = pathToFileURL(`${dirname(realpathSync(join(ROOT, 'package.json')))}/`);
  if (!distCurrent(checkout)) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const built = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stdout + built.stderr);
  } else {
    cpSync(new URL('dist', checkout), join(dir, 'dist'), { recursive: true });
  }
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(
    join(dir, 'hello.mjs'),
    `export default { name: 'hello', create: (config) => ({ onUpstreamRequest(ctx) { ctx.upstreamHeaders.set('x-hello', config.value); } }) };\n`,
  );
});

test('the entry points are compiled JavaScript with type definitions; nothing else is exported', async () => {
  for (const file of ['index.js', 'index.d.ts', 'testing.js', 'testing.d.ts']) assert.ok(existsSync(join(dir, 'dist', file)), file);
  assert.match(readFileSync(join(dir, 'dist/index.d.ts'), 'utf8'), /startGateway/);
  assert.match(readFileSync(join(dir, 'dist/index.d.ts'), 'utf8'), /definePlugin/);
  writeFileSync(
    join(dir, 'private.mjs'),
    `try { await import('portcullis/dist/server.js'); console.log('importable'); } catch (err) { console.log(err.code); }\n`,
  );
  const result = await runNode('private.mjs');
  assert.equal(result.stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
});

test("importing 'portcullis' (definePlugin, ConfigError) loads no library: a plugin's import costs nothing in a gateway", async () => {
  // The gateway runs from its bundle (dist/bundle/), so a plugin importing the package entry loads dist/ anew;
  // startGateway loads the gateway only when called.
  writeFileSync(
    join(dir, 'light.mjs'),
    `import { definePlugin, ConfigError, startGateway } from 'portcullis';
const plugin = definePlugin({ name: 'light', create: () => ({}) });
console.log(JSON.stringify({ name: plugin.name, error: new ConfigError('x').name, start: typeof startGateway }));
`,
  );
  writeFileSync(join(dir, 'trace-hooks.mjs'), `export async function load(url, context, next) { if (url.includes('/node_modules/') || url.includes('/dist/')) process.stderr.write(url + '\\n'); return next(url, context); }\n`);
  writeFileSync(join(dir, 'trace.mjs'), `import { register } from 'node:module'; register('./trace-hooks.mjs', import.meta.url);\n`);
  const traced = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', './trace.mjs', 'light.mjs'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    void childExit(child).then(({ code }) => resolve({ code, stdout, stderr }));
  });
  assert.equal(traced.code, 0, traced.stderr);
  const result = JSON.parse(traced.stdout) as { name: string; error: string; start: string };
  assert.deepEqual([result.name, result.error, result.start], ['light', 'ConfigError', 'function']);
  const modules = traced.stderr.split('\n').filter(Boolean);
  assert.deepEqual(modules.filter((url) => url.includes('/node_modules/')), [], 'no library is loaded');
  assert.ok(modules.length <= 4, `dist/ modules loaded: ${modules.join(', ')}`);
});

test('in plain node (the gateway running compiled), a TypeScript plugin from a checkout loads through tsx on demand', async () => {
  writeFileSync(
    join(dir, 'typed.ts'),
    `interface C { readonly value: string }\nexport default { name: 'typed', create: (config: C) => ({ onUpstreamRequest(ctx: any): void { ctx.upstreamHeaders.set('x-typed', config.value); } }) };\n`,
  );
  writeFileSync(
    join(dir, 'typed.mjs'),
    `import { createTestGateway } from 'portcullis/testing';
const kit = await createTestGateway({ plugins: [{ name: 't', module: './typed.ts', config: { value: 'ts' } }], middleware: { plugins: ['t'] } });
const res = await kit.inject({ url: '/' });
await kit.close();
console.log(res.json().headers['x-typed']);
`,
  );
  const result = await runNode('typed.mjs');
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'ts');
});

test('in plain node: the test kit injects through a plugin, startGateway serves, and after close() node exits by itself', async () => {
  writeFileSync(
    join(dir, 'embed.mjs'),
    `import http from 'node:http';
import { startGateway, definePlugin } from 'portcullis';
import { createTestGateway } from 'portcullis/testing';

const kit = await createTestGateway({ plugins: [{ name: 'hello', module: './hello.mjs', config: { value: 'compiled' } }], middleware: { plugins: ['hello'] } });
const injected = await kit.inject({ url: '/x' });
await kit.close();

const gateway = await startGateway({
  server: { listen_host: '127.0.0.1', listen_port: 0 },
  admin: { enabled: false },
  logging: { level: 'silent', format: 'json' },
  load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
});
const health = await new Promise((resolve, reject) => {
  http.get(gateway.url + '/health', { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
});
await gateway.close();
// Closing handles finish within a turn or two; then nothing may keep node alive (timers, sockets, servers), the
// process's own stdio pipes aside.
await new Promise((resolve) => setTimeout(resolve, 300));
// No process.exit(): the test checks that the process ends on its own.
console.log(JSON.stringify({ helper: typeof definePlugin, injected: injected.json().headers['x-hello'], health, alive: process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap') }));
`,
  );
  const result = await runNode('embed.mjs');
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop()!), { helper: 'function', injected: 'compiled', health: 200, alive: [] });
});
