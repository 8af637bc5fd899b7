// A reload imports a plugin file whose code changed even when its modification time did not (a deploy with
// `cp -p`, `rsync -t` or a build with fixed timestamps): the module's version is not its mtime alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';

function pluginSource(version: string): string {
  return `export default { name: 'v', create() { return { onResponse(ctx) { ctx.responseHeaders.set('x-code', '${version}'); } }; } };\n`;
}

test('a plugin file rewritten with its old modification time is re-imported by a reload', async () => {
  const backend = await startBackend('echo');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-code-'));
  const file = join(dir, 'v.mjs');
  writeFileSync(file, pluginSource('one'));
  const when = 1_700_000_000; // a whole second: what the rewrite sets back is then exactly what was there
  utimesSync(file, when, when);
  const config = {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: [{ name: 'v', module: file }],
    middleware: { plugins: ['v'] },
  };
  const gw = await startInProcess(config);
  try {
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'one');
    writeFileSync(file, pluginSource('two'));
    utimesSync(file, when, when); // as `cp -p` leaves it
    assert.equal(statSync(file).mtimeMs, when * 1000);
    await gw.gateway.reload(parseConfigObject(config));
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'two');
  } finally {
    await gw.close();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// review16: the version was the file's times and inode, which a `touch`, a `chmod` or a ConfigMap's symlink swap move
// without changing a byte. Node never unloads a module: each such reload imported the plugin again and kept the old
// copy with its top-level state (+15 MB a reload for a plugin holding a table, without bound).
test('a plugin file touched, chmod-ed or replaced by a copy of itself is not imported again by a reload; its instance is kept', async () => {
  const backend = await startBackend('echo');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-same-'));
  const file = join(dir, 'count.mjs');
  const key = `__review16Imports${process.pid}`;
  const source = `globalThis.${key} = (globalThis.${key} ?? 0) + 1;
let created = 0;
export default { name: 'count', create() { const n = ++created; return { onResponse(ctx) { ctx.responseHeaders.set('x-imports', String(globalThis.${key})); ctx.responseHeaders.set('x-instance', String(n)); } }; } };
`;
  writeFileSync(file, source);
  const config = {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: [{ name: 'count', module: file }],
    middleware: { plugins: ['count'] },
  };
  const gw = await startInProcess(config);
  const seen = async (): Promise<[string | null, string | null]> => {
    const res = await fetch(`${gw.url}/`);
    return [res.headers.get('x-imports'), res.headers.get('x-instance')];
  };
  try {
    assert.deepEqual(await seen(), ['1', '1']);
    const later = Date.now() / 1000 + 60;
    utimesSync(file, later, later); // touch
    await gw.gateway.reload(parseConfigObject(config));
    chmodSync(file, 0o640); // chmod
    await gw.gateway.reload(parseConfigObject(config));
    writeFileSync(`${file}.new`, source); // a copy swapped in by rename: another inode, the same bytes
    renameSync(`${file}.new`, file);
    await gw.gateway.reload(parseConfigObject(config));
    assert.deepEqual(await seen(), ['1', '1'], 'imported once, the instance kept');
    writeFileSync(file, `${source}// changed\n`);
    await gw.gateway.reload(parseConfigObject(config));
    assert.deepEqual(await seen(), ['2', '1'], 'a change in content is imported (a new module: its own count of instances)');
  } finally {
    await gw.close();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// From the fix's review. Node's resolver keeps the real path it found for a URL for the process's life: after a
// ConfigMap's symlink swap the same path imported the old target, or failed with ENOENT once it was deleted. And
// content seen before (a rollback) was handed back as the module node kept, with the state of its first run.
test('a symlink swapped to a new plugin file is imported anew; a rollback to earlier content runs its code again', async () => {
  const backend = await startBackend('echo');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-reload-swap-'));
  const key = `__review16Runs${process.pid}`;
  const source = (v: string) =>
    `globalThis.${key} = (globalThis.${key} ?? 0) + 1; const run = globalThis.${key};\nexport default { name: 'v', create() { return { onResponse(ctx) { ctx.responseHeaders.set('x-code', '${v}.' + run); } }; } };\n`;
  // The ConfigMap layout: ..v1/v.mjs, ..data -> ..v1, v.mjs -> ..data/v.mjs
  const version = (n: number, v: string): void => {
    mkdirSync(join(dir, `..v${n}`));
    writeFileSync(join(dir, `..v${n}`, 'v.mjs'), source(v));
    symlinkSync(`..v${n}`, join(dir, '..data.new'));
    renameSync(join(dir, '..data.new'), join(dir, '..data'));
  };
  version(1, 'one');
  symlinkSync(join('..data', 'v.mjs'), join(dir, 'v.mjs'));
  const config = {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: [{ name: 'v', module: join(dir, 'v.mjs') }],
    middleware: { plugins: ['v'] },
  };
  const gw = await startInProcess(config);
  try {
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'one.1');
    version(2, 'two');
    rmSync(join(dir, '..v1'), { recursive: true });
    await gw.gateway.reload(parseConfigObject(config));
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'two.2');
    version(3, 'one'); // the first content again
    await gw.gateway.reload(parseConfigObject(config));
    assert.equal((await fetch(`${gw.url}/`)).headers.get('x-code'), 'one.3', 'its top-level code ran again');
  } finally {
    await gw.close();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plugin package whose entry is a FIFO is refused at once, never waited on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-fifo-'));
  try {
    mkdirSync(join(dir, 'node_modules', 'fifo-plugin'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'fifo-plugin', 'package.json'), '{ "name": "fifo-plugin", "type": "module", "main": "index.js" }\n');
    execFileSync('mkfifo', [join(dir, 'node_modules', 'fifo-plugin', 'index.js')]);
    const { loadPlugin } = await import('../../src/plugins/load.js');
    await assert.rejects(loadPlugin({ name: 'f', module: 'fifo-plugin' } as never, 0, dir, 2_000), /plugins\[0\]\.module: cannot load fifo-plugin: not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
