// Placeholders through check-config: `$${NAME}` is the literal `${NAME}` (docker compose's escape), so a value can
// hold a `${` without naming a variable.
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
