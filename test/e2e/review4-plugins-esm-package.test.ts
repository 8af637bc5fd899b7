// A plugin shipped as an ES-module-only npm package (`"exports": { ".": { "import": "./index.js" } }`, the shape
// many packages publish now) is found where a CommonJS one is, and a reload after the package was upgraded runs the
// new code. What was wrong: packages were looked up with require's conditions, which such a package does not answer
// to; the gateway then fell back to import() from its own location, so the package installed beside the config
// (the deployment's node_modules, searched first for every other package) was "not found", and one found in
// Portcullis's own node_modules had no file to stat: its instance was kept by every reload, the old code running
// after `npm install` and a "Config Reloaded". What is right now: a package is resolved with import's conditions
// from the config's directory, then from Portcullis's, and its entry file's version decides a reload like a path's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/server.js';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-esm-package-'));
const pkg = join(dir, 'node_modules', 'esm-only-plugin');

function writePlugin(answer: string): void {
  writeFileSync(join(pkg, 'index.js'), `export default { name: 'esm', create() { return { onRequest(ctx) { return ctx.respond(200, '${answer}'); } }; } };\n`);
}

const CONFIG = `
server: { listen_host: 127.0.0.1, listen_port: 0 }
logging: { format: json }
# No admin listener: its default port (9090) is one any other test's gateway may hold at the same time.
admin: { enabled: false }
load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 9 }] }
plugins: [{ name: esm, module: esm-only-plugin }]
middleware: { plugins: [esm] }
`;

describe('a plugin published as an ES-module-only package', () => {
  before(() => {
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'esm-only-plugin', version: '1.0.0', type: 'module', exports: { '.': { import: './index.js' } } }),
    );
    writePlugin('v1');
    writeFileSync(join(dir, 'gateway.yaml'), CONFIG);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('check-config finds it in the node_modules beside the config', async () => {
    const result = await runCli(['check-config', '--config', join(dir, 'gateway.yaml')]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
  });

  test('a reload after the package changed runs the new code', async () => {
    const sink = new Writable({ write: (_chunk, _enc, done) => done() });
    let gateway: Gateway | undefined;
    try {
      gateway = await startGateway(parseConfigText(CONFIG), { logger: pino({ level: 'silent' }, sink), logSink: sink, pluginBaseDir: dir, dataDir: dir });
      const url = `http://127.0.0.1:${gateway.port}/x`;
      assert.equal(await (await fetch(url)).text(), 'v1');
      writePlugin('v2');
      await gateway.reload(parseConfigText(CONFIG));
      assert.equal(await (await fetch(url)).text(), 'v2');
    } finally {
      await gateway?.close();
    }
  });
});
