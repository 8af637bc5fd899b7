// A CommonJS plugin (a .cjs file, or a package whose entry is CommonJS) changed on disk runs its new code after a
// reload, as README promises ("A changed module file is re-imported"). What was wrong: the reload saw the new file
// version and re-created the instance, but import() of a CommonJS file goes through require's cache, keyed by the
// file name without the URL's version: the new instance was made from the old code, and the reload said
// "Config Reloaded". What is right now: the plugin's own file is dropped from require's cache before it is imported
// again (the modules it requires itself are not, as README says of imports).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/server.js';

const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-cjs-reload-'));
const pkg = join(dir, 'node_modules', 'cjs-plugin');

const source = (name: string, answer: string) =>
  `module.exports = { name: '${name}', create() { return { onRequest(ctx) { return ctx.respond(200, '${answer}'); } }; } };\n`;

const config = (module: string) => `
server: { listen_host: 127.0.0.1, listen_port: 0 }
# No admin listener: its default port (9090) is one any other test's gateway may hold at the same time.
admin: { enabled: false }
load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 9 }] }
plugins: [{ name: p, module: ${module} }]
middleware: { plugins: [p] }
`;

describe('a CommonJS plugin changed on disk, then reloaded', () => {
  before(() => {
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'cjs-plugin', version: '1.0.0', main: 'index.js' }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [what, module, file] of [
    ['a .cjs file', './plugin.cjs', join(dir, 'plugin.cjs')],
    ['a CommonJS npm package', 'cjs-plugin', join(pkg, 'index.js')],
  ] as const) {
    test(`${what}: the reload runs the new code`, async () => {
      writeFileSync(file, source(what, 'v1'));
      const sink = new Writable({ write: (_chunk, _enc, done) => done() });
      let gateway: Gateway | undefined;
      try {
        gateway = await startGateway(parseConfigText(config(module)), { logger: pino({ level: 'silent' }, sink), logSink: sink, pluginBaseDir: dir, dataDir: dir });
        const url = `http://127.0.0.1:${gateway.port}/x`;
        assert.equal(await (await fetch(url)).text(), 'v1');
        writeFileSync(file, source(what, 'v2'));
        await gateway.reload(parseConfigText(config(module)));
        assert.equal(await (await fetch(url)).text(), 'v2');
      } finally {
        await gateway?.close();
      }
    });
  }
});
