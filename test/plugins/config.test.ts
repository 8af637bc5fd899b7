// Plugin config errors: one line naming the key, exit 1, from check-config and from start; a TypeScript plugin
// loads from a checkout.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runCli } from '../helpers/gateway.js';
import { ConfigError, parseConfigObject } from '../../src/config/load.js';
import { fixture } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Relative module paths start at the config file's directory.
copyFileSync(fixture('hello.mjs'), join(dir, 'hello.mjs'));
copyFileSync(fixture('no-create.mjs'), join(dir, 'no-create.mjs'));
writeFileSync(join(dir, 'broken.mjs'), 'export default {{ not javascript');

let n = 0;
function configFile(plugins: unknown[], order: string[] = []): string {
  const file = join(dir, `proxy-${n++}.yaml`);
  writeFileSync(
    file,
    stringify({
      server: { listen_host: '127.0.0.1', listen_port: 0 },
      admin: { enabled: false },
      load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: 9 }] },
      plugins,
      middleware: { plugins: order },
    }),
  );
  return file;
}

describe('plugin config errors (check-config)', () => {
  const cases: Array<[string, unknown[], string[], string]> = [
    ['a module that is not there', [{ name: 'hello', module: './helo.mjs' }], ['hello'], 'plugins[0].module: cannot load ./helo.mjs: not found'],
    ['a package that is not installed', [{ name: 'x', module: 'portcullis-plugin-nope' }], [], 'plugins[0].module: cannot load portcullis-plugin-nope: not found'],
    ['a module that does not parse', [{ name: 'b', module: './broken.mjs' }], [], 'plugins[0].module: cannot load ./broken.mjs: SyntaxError'],
    ['a module without create()', [{ name: 'n', module: './no-create.mjs' }], [], 'plugins[0].module: ./no-create.mjs has no create() in its default export'],
    ['a validate() that throws', [{ name: 'hello', module: './hello.mjs', config: { value: 3 } }], ['hello'], 'plugins[0].config: value must be a string'],
    ['an unknown name in middleware.plugins', [{ name: 'hello', module: './hello.mjs', config: { value: 'x' } }], ['helo'], 'middleware.plugins[0]: unknown plugin "helo"'],
    ['a duplicate instance name', [{ name: 'a', module: './hello.mjs', config: { value: 'x' } }, { name: 'a', module: './hello.mjs', config: { value: 'y' } }], [], 'plugins[1].name: duplicate plugin name "a"'],
    ['an unknown key', [{ name: 'a', module: './hello.mjs', options: {} }], [], 'plugins[0].options: unknown key'],
  ];
  for (const [what, plugins, order, message] of cases) {
    test(`${what}: "${message}", exit 1`, async () => {
      const result = await runCli(['check-config', '--config', configFile(plugins, order)]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `portcullis: config error: ${message}\n`);
    });
  }

  test('a good plugin config passes check-config', async () => {
    const result = await runCli(['check-config', '--config', configFile([{ name: 'hello', module: './hello.mjs', config: { value: 'w' } }], ['hello'])]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
  });

  test('start refuses the same config with the same line and exit 1', async () => {
    const result = await runCli(['start', '--config', configFile([{ name: 'hello', module: './helo.mjs' }], ['hello'])]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^portcullis: config error: plugins\[0\]\.module: cannot load \.\/helo\.mjs: not found\n$/);
  });

  test('the cross-key rules also hold for a config object (embedding)', () => {
    assert.throws(
      () => parseConfigObject({ load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] }, middleware: { plugins: ['ghost'] } }),
      (err: unknown) => err instanceof ConfigError && err.message === 'middleware.plugins[0]: unknown plugin "ghost"',
    );
  });

  test('a TypeScript plugin loads from a checkout', async () => {
    const result = await runCli(['check-config', '--config', configFile([{ name: 't', module: fixture('typed.ts'), config: { header: 'x-typed' } }], ['t'])]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
  });
});
