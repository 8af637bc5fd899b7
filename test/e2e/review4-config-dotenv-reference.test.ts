// What was wrong: docker compose expands ${VAR} inside a .env value (`DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app`,
// `ADMIN_TOKEN=${CI_ADMIN_TOKEN}`), except in a single-quoted one. Portcullis reads .env as compose does otherwise
// (comments, quotes, `export`), but took such a value as its literal text: with `token: "${ADMIN_TOKEN:-}"` as in
// config/proxy.yaml, the admin API started with the token "${CI_ADMIN_TOKEN}", which anyone reading the .env knows.
// What is right now: a .env line whose value would be used and refers to a variable is a config error naming the file,
// line, key and variable (never the value), at start-up and in check-config; a single-quoted value is the text as
// written, and a variable set in the real environment wins over its line as before.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review4-config-dotenv-reference-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = join(dir, 'proxy.yaml');
writeFileSync(
  config,
  'server: {listen_host: 127.0.0.1, listen_port: 0}\nadmin: {listen_port: 0, token: "${R4_ADMIN_TOKEN:-}"}\n' +
    'load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 3000}]}\n',
);
const env = { R4_ADMIN_TOKEN: undefined, R4_CI_TOKEN: undefined, PORTCULLIS_DATA_DIR: join(dir, 'data') };

test('a .env value referring to a variable is refused, by check-config and start', async () => {
  writeFileSync(join(dir, '.env'), '# tokens\nPORT=8080\nR4_ADMIN_TOKEN=${R4_CI_TOKEN}\n');
  for (const cmd of ['check-config', 'start']) {
    // Bounded: before the fix `start` served with the literal token until killed.
    const result = await runCli([cmd, '--config', config], env, { cwd: dir, boundMs: 10_000 });
    assert.equal(
      result.stderr,
      'portcullis: config error: .env line 3: the value of R4_ADMIN_TOKEN refers to ${R4_CI_TOKEN}, which a .env value does not ' +
        'expand: set R4_ADMIN_TOKEN in the environment, or single-quote the value to mean the text as written\n',
      cmd,
    );
    assert.equal(result.code, 1, cmd);
  }
  // Double quotes expand in compose too.
  writeFileSync(join(dir, '.env'), 'R4_ADMIN_TOKEN="x-${R4_CI_TOKEN}-y" # note\n');
  const quoted = await runCli(['check-config', '--config', config], env, { cwd: dir });
  assert.match(quoted.stderr, /\.env line 1: the value of R4_ADMIN_TOKEN refers to \$\{R4_CI_TOKEN\}/);
  assert.equal(quoted.code, 1);
});

test('a single-quoted value is literal, and the real environment still wins over the line', async () => {
  writeFileSync(join(dir, '.env'), "R4_ADMIN_TOKEN='literal-${R4_CI_TOKEN}-text'\n");
  const single = await runCli(['check-config', '--config', config], env, { cwd: dir });
  assert.equal(single.stderr, '');
  assert.equal(single.code, 0);
  writeFileSync(join(dir, '.env'), 'R4_ADMIN_TOKEN=${R4_CI_TOKEN}\n');
  const real = await runCli(['check-config', '--config', config], { ...env, R4_ADMIN_TOKEN: '0123456789abcdef0123' }, { cwd: dir });
  assert.equal(real.stderr, '');
  assert.equal(real.code, 0);
});
