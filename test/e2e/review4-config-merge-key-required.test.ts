// What was wrong: the README says merge keys (`<<`) are refused, and the loader has a message saying so, but only
// the first schema problem was reported. When the merge supplied keys that are required (the usual use:
// `- {<<: *upstream_defaults, name: a1}`), the first problem was the key the merge did not give
// (`services.a.upstreams[0].address: is required`), so a user who can see `address` in the anchor was told it is
// missing and never that `<<` is not supported. A misspelt key was the same: `adress:` reported "address: is
// required" and never named the key actually written.
// What is right now: a key reported absent is explained by an unknown key in the same mapping when there is one: the
// merge key's own message, or the misspelt key named as unknown.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';
import { configErrorOf } from '../helpers/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review4-config-merge-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MERGE = ': merge keys (YAML 1.1) are not supported: write the keys out, or alias a whole mapping';

test('a merge key that supplies required keys is named, by check-config', async () => {
  const file = join(dir, 'merge.yaml');
  writeFileSync(
    file,
    'admin: {enabled: false}\nservices:\n  base: &svc {upstreams: [{name: a1, address: 127.0.0.1, port: 9001}]}\n' +
      '  a:\n    <<: *svc\nroutes:\n  - {name: r, service: a}\n',
  );
  const result = await runCli(['check-config', '--config', file]);
  assert.equal(result.stderr, `portcullis: config error: services.a.<<${MERGE}\n`);
  assert.equal(result.code, 1);
});

test('in flow and block style, before or after the other keys', () => {
  const tail = 'routes:\n  - {name: r, service: a}\n';
  for (const upstream of [
    '[{<<: {address: 127.0.0.1, port: 9001}, name: a1}]',
    '[{name: a1, <<: {address: 127.0.0.1, port: 9001}}]',
    '\n      - name: a1\n        <<: {address: 127.0.0.1, port: 9001}',
  ]) {
    assert.equal(configErrorOf(`services:\n  a:\n    upstreams: ${upstream}\n${tail}`), `services.a.upstreams[0].<<${MERGE}`, upstream);
  }
});

test('a misspelt required key is named as the unknown key it is', () => {
  assert.equal(
    configErrorOf('services:\n  a: {upstreams: [{name: a1, adress: 127.0.0.1, port: 9001}]}\nroutes:\n  - {name: r, service: a}\n'),
    'services.a.upstreams[0].adress: unknown key',
  );
  // With nothing unknown beside it, an absent key is still "is required".
  assert.equal(
    configErrorOf('services:\n  a: {upstreams: [{name: a1, port: 9001}]}\nroutes:\n  - {name: r, service: a}\n'),
    'services.a.upstreams[0].address: is required',
  );
});
