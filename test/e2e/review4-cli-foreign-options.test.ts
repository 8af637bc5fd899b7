// Options and arguments a command never reads are bad usage (exit 2), as they are for users and api-keys: they were
// ignored, so `migrate --match x` applied migrations and `check-config other.yaml` checked the default file, exit 0.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { runCli, tempDataDir, writeConfig } from '../helpers/gateway.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('each command refuses an option or argument it does not read, before doing anything', async () => {
  const dataDir = tempDataDir(); // a migrate that ran would write here, not in the clone
  dirs.push(dataDir);
  const env = { PORTCULLIS_DATA_DIR: dataDir };
  const config = writeConfig({ load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] } });
  const cases: string[][] = [
    ['check-config', '--config', config, 'other.yaml'],
    ['check-config', '--config', config, '--json'],
    ['check-config', '--config', config, '--email', 'x'],
    ['migrate', '--config', config, '--match', 'GET /'],
    ['routes', '--config', config, '--expires-in', '7d'],
    ['routes', '--config', config, 'extra'],
    ['routes', '--config', config, '-H', 'x: y'],
    ['schema', 'extra'],
    ['schema', '--limit', '3'],
    ['start', '--config', config, '--limit', '3'],
  ];
  for (const args of cases) {
    const result = await runCli(args, env);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
    assert.equal(result.stdout, '', args.join(' '));
    assert.match(result.stderr, /^portcullis: \w[\w-]* takes /, args.join(' '));
    assert.match(result.stderr, /\nUsage: portcullis/, args.join(' '));
  }
  // What they do read still works.
  assert.equal((await runCli(['check-config', '--config', config])).code, 0);
  assert.equal((await runCli(['routes', '--config', config, '--json'])).code, 0);
  assert.equal((await runCli(['routes', '--config', config, '--match', 'GET http://x/', '-H', 'a: b'])).code, 0);
  assert.equal((await runCli(['schema'])).code, 0);
});
