// Regression of d8bdd04 (a .env value referring to ${VAR} is a config error). The refusal was meant for a value the
// gateway would use (`ADMIN_TOKEN=${CI_ADMIN_TOKEN}` read by `token: "${ADMIN_TOKEN:-}"`), but it was made for every
// line of the file: the .env in the working directory is also docker compose's (docker-compose.yml interpolates it),
// and a line there for another service (`POSTGRES_URL=postgres://app:${DB_PASSWORD}@db/app`) that no placeholder of
// the config names stopped start-up, check-config and every reload of a config that had loaded before. Now only a
// line whose variable the config reads (or one the gateway reads itself: PORTCULLIS_CONFIG, PORTCULLIS_DATA_DIR,
// LOG_LEVEL) is refused, with the same message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review4-regress-dotenv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = join(dir, 'proxy.yaml');
writeFileSync(
  config,
  'server: {listen_host: 127.0.0.1, listen_port: 0}\nadmin: {listen_port: 0, token: "${R4R_ADMIN_TOKEN:-}"}\n' +
    'load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 3000}]}\n',
);
const env = { R4R_ADMIN_TOKEN: undefined, R4R_POSTGRES_URL: undefined, R4R_DB_PASSWORD: undefined, PORTCULLIS_DATA_DIR: join(dir, 'data') };

test('a .env line no placeholder of the config reads may refer to a variable (compose expands it for others)', async () => {
  writeFileSync(join(dir, '.env'), 'R4R_POSTGRES_URL=postgres://app:${R4R_DB_PASSWORD}@db/app\nR4R_ADMIN_TOKEN=0123456789abcdef0123\n');
  const result = await runCli(['check-config', '--config', config], env, { cwd: dir });
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
});

test('a line the config reads is still refused, with or without a default', async () => {
  writeFileSync(join(dir, '.env'), 'R4R_POSTGRES_URL=postgres://app:${R4R_DB_PASSWORD}@db/app\nR4R_ADMIN_TOKEN="${R4R_CI}"\n');
  const result = await runCli(['check-config', '--config', config], env, { cwd: dir });
  assert.equal(
    result.stderr,
    'portcullis: config error: .env line 2: the value of R4R_ADMIN_TOKEN refers to ${R4R_CI}, which a .env value does not ' +
      'expand: set R4R_ADMIN_TOKEN in the environment, or single-quote the value to mean the text as written\n',
  );
  assert.equal(result.code, 1);
});

test('a variable the gateway reads itself (PORTCULLIS_DATA_DIR) is still refused', async () => {
  writeFileSync(join(dir, '.env'), 'PORTCULLIS_DATA_DIR=${R4R_DATA}/portcullis\n');
  const result = await runCli(['check-config', '--config', config], { ...env, PORTCULLIS_DATA_DIR: undefined }, { cwd: dir });
  assert.match(result.stderr, /\.env line 1: the value of PORTCULLIS_DATA_DIR refers to \$\{R4R_DATA\}/);
  assert.equal(result.code, 1);
});
