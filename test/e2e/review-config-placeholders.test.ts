// Placeholders through check-config: `$${NAME}` is the literal `${NAME}` (docker compose's escape), so a value can
// hold a `${` without naming a variable; a key that a placeholder made is named in errors as written, never with the
// variable's value (a secret, when a missing colon turned `token: ${ADMIN_TOKEN}` into a key).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-config-placeholders-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('$${NAME} is accepted unset: it is no placeholder', async () => {
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nserver: {proxy_by: "edge $${REVIEW_UNSET_NAME}"}\n' +
      'load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n',
  );
  const result = await runCli(['check-config', '--config', file], { REVIEW_UNSET_NAME: undefined });
  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
});

test('an unknown key made by a placeholder is named as written: the secret it expanded to never shows', async () => {
  const secret = 's3cr3t-hunter2-token-value';
  for (const [text, expected] of [
    // A missing colon in a flow mapping: `token ${ADMIN_TOKEN}` is one key.
    ['admin: {enabled: false, token ${REVIEW_SECRET}}\n', 'admin.token ${REVIEW_SECRET}: unknown key'],
    ['database: {url: "", ${REVIEW_SECRET}: 1}\n', 'database.${REVIEW_SECRET}: unknown key'],
    ['jwt:\n  secret ${REVIEW_SECRET}:\n', 'jwt.secret ${REVIEW_SECRET}: unknown key'],
    ['services:\n  ${REVIEW_SECRET}: {upstreams: [{name: a, address: 127.0.0.1, port: "x"}]}\n', 'services.${REVIEW_SECRET}.upstreams[0].port: must be a number'],
  ]) {
    const file = join(dir, 'secret-key.yaml');
    writeFileSync(file, `${text}load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`);
    const result = await runCli(['check-config', '--config', file], { REVIEW_SECRET: secret });
    assert.equal(result.stderr, `portcullis: config error: ${expected}\n`, text);
    assert.ok(!result.stderr.includes('hunter2'), text);
  }
});

// From review (stop 18): a key a placeholder made that its mapping already holds silently replaced that key's value
// (`proxy_by: first` then `${K}: second` with K=proxy_by sent "second"), where a key written twice is refused.
test('a key a placeholder made that its mapping already holds is refused as a key written twice, named as written', async () => {
  for (const [text, line] of [
    ['server: {proxy_by: first, ${REVIEW_KEY}: second}\n', 1],
    ['server:\n  proxy_by: first\n  ${REVIEW_KEY}: second\n', 3],
    ['server:\n  ${REVIEW_KEY}: first\n  ${REVIEW_KEY2}: second\n', 3],
  ] as const) {
    const file = join(dir, 'made-duplicate.yaml');
    writeFileSync(file, `${text}load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`);
    const result = await runCli(['check-config', '--config', file], { REVIEW_KEY: 'proxy_by', REVIEW_KEY2: 'proxy_by' });
    assert.equal(result.code, 1, text);
    assert.match(result.stderr, new RegExp(`^portcullis: config error: .*made-duplicate\\.yaml: invalid YAML at line ${line} \\(a key given twice in one mapping: \\$\\{REVIEW_KEY2?\\} names a key already given\\)\n$`), text);
  }
  // Alone, such a key is the key it names.
  const file = join(dir, 'made-key.yaml');
  writeFileSync(file, 'server:\n  ${REVIEW_KEY}: made\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n');
  assert.equal((await runCli(['check-config', '--config', file], { REVIEW_KEY: 'proxy_by' })).code, 0);
});

// From review (stop 18): `!!int ${P}` was refused as an unsupported tag, though !!int itself is allowed.
test('a core tag on a placeholder is refused saying so, and what to write instead', async () => {
  for (const [value, line] of [['!!int ${REVIEW_PORT}', 2], ['!!int "${REVIEW_PORT}"', 2]] as const) {
    const file = join(dir, 'tagged.yaml');
    writeFileSync(file, `admin: {enabled: false}\nserver: {listen_port: ${value}}\nload_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`);
    const result = await runCli(['check-config', '--config', file], { REVIEW_PORT: '24001' });
    assert.equal(result.code, 1, value);
    assert.match(result.stderr, new RegExp(`invalid YAML at line ${line} \\(a tag on a placeholder: write the placeholder without it`), value);
  }
});

test('placeholders that expand past 16 MiB in all are a config error naming the file, not a RangeError', async () => {
  // 6,000 copies of a 100 kB variable in one value: 600 MB, past V8's longest string ("Invalid string length");
  // spread over several values, as much memory as the process has (a reload took the gateway down).
  const file = join(dir, 'expands.yaml');
  writeFileSync(
    file,
    `admin: {enabled: false}\nserver: {proxy_by: "${'${REVIEW_BIG}'.repeat(6_000)}"}\n` +
      'load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n',
  );
  const result = await runCli(['check-config', '--config', file], { REVIEW_BIG: 'x'.repeat(100_000) });
  assert.equal(result.stderr, `portcullis: config error: ${file}: placeholders expand to more than 16 MiB of text\n`);
  assert.equal(result.code, 1);
});

test('a placeholder in a default is a config error, not the literal text "${B}"', async () => {
  // ${A:-${B}} read as ${A:-${B} (a default cannot hold "}") and a "}": with A unset, the value was "${B}".
  const file = join(dir, 'nested.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nserver:\n  proxy_by: ${REVIEW_A:-${REVIEW_B}}\n' +
      'load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n',
  );
  const result = await runCli(['check-config', '--config', file], { REVIEW_A: undefined, REVIEW_B: 'bee' });
  assert.equal(
    result.stderr,
    `portcullis: config error: ${file}: the default of \${REVIEW_A} holds a placeholder: defaults are literal text, and cannot hold "}" or "\${"\n`,
  );
  assert.equal(result.code, 1);
});

test('a placeholder a comment cut short is a config error, not the text "${A:-a b"', async () => {
  // Unquoted, " #" starts a YAML comment: the value was "${REVIEW_A:-a b", kept as that text.
  const file = join(dir, 'cut.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nserver:\n  proxy_by: ${REVIEW_A:-a b #c}\n' +
      'load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n',
  );
  const result = await runCli(['check-config', '--config', file], { REVIEW_A: undefined });
  assert.equal(
    result.stderr,
    `portcullis: config error: ${file}: a placeholder (\${REVIEW_A}) has no closing "}" in its value (unquoted, " #" starts a comment: quote the value)\n`,
  );
  assert.equal(result.code, 1);
});
