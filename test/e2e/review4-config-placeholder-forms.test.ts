// What was wrong: only ${VAR} and ${VAR:-default} are placeholders, but docker compose (whose .env, `$${` escape and
// placeholders the README follows) also has ${VAR:?message}, ${VAR?message}, ${VAR-default}, ${VAR:+alt} and
// ${VAR+alt}. Written in block style, such a value was taken as its literal text, silently: with ADMIN_TOKEN and
// JWT_SECRET unset, `token: ${ADMIN_TOKEN:?required}` started a gateway whose admin token was the text
// "${ADMIN_TOKEN:?required}" and whose JWT secret was the text of the config (anyone who can read the file could call
// the admin API and sign tokens), exactly when the `:?` was there to stop it. `port: ${PORT-8080}` said "must be a
// number" about a value the user wrote as a placeholder, and in flow style each was only "invalid YAML at line N".
// What is right now: every such form is a config error naming the variable and the form, in block and flow style,
// set or unset; `$${VAR:?x}` stays the literal escape.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';
import { configErrorOf } from '../helpers/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review4-config-placeholder-forms-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const UPSTREAMS = 'load_balancing:\n  upstreams:\n    - name: a\n      address: 127.0.0.1\n      port: 3000\n';

test('a compose-only placeholder form never becomes the literal admin token or JWT secret', async () => {
  const file = join(dir, 'secrets.yaml');
  writeFileSync(
    file,
    `server:\n  listen_host: 127.0.0.1\n  listen_port: 0\n${UPSTREAMS}admin:\n  listen_port: 0\n  token: \${R4_ADMIN_TOKEN:?required}\n` +
      'jwt:\n  secret: ${R4_JWT_SECRET:?JWT_SECRET_must_be_set_to_a_random_value}\n',
  );
  for (const cmd of ['check-config', 'start']) {
    // Bounded: before the fix `start` served on the literal secrets until killed.
    const result = await runCli(
      [cmd, '--config', file],
      { R4_ADMIN_TOKEN: undefined, R4_JWT_SECRET: undefined, PORTCULLIS_DATA_DIR: dir },
      { boundMs: 10_000 },
    );
    assert.equal(result.code, 1, `${cmd}: ${result.stderr}`);
    assert.match(result.stderr, /config error: .*\$\{R4_ADMIN_TOKEN:\?…\}.*not supported/, cmd);
  }
});

test('each form is refused by name, block and flow style alike, set or unset', () => {
  for (const op of [':?', '?', '-', ':+', '+', ':=', '=']) {
    for (const style of ['block', 'flow']) {
      const port = `\${R4_PORT${op}3000}`;
      const text =
        'admin: {enabled: false}\n' +
        (style === 'block'
          ? `load_balancing:\n  upstreams:\n    - name: a\n      address: 127.0.0.1\n      port: ${port}\n`
          : `load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: ${port}}]}\n`);
      for (const value of [undefined, '3001']) {
        assert.equal(
          configErrorOf(text, value === undefined ? {} : { R4_PORT: value }),
          `config: \${R4_PORT${op}…} is not supported: placeholders are \${VAR} (an error when VAR is unset) ` +
            'and ${VAR:-default}; write $${ for a literal "${"',
          `${op} ${style} ${value}`,
        );
      }
    }
  }
});

test('the supported forms and the $${ escape still load', async () => {
  const file = join(dir, 'ok.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nserver: {proxy_by: "edge $${R4_X:?kept}"}\n' +
      'load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: ${R4_PORT:-3000}}]}\n',
  );
  const result = await runCli(['check-config', '--config', file], { R4_PORT: undefined, R4_X: undefined });
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
});
