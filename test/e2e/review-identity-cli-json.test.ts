// `users delete --json` and `api-keys revoke --json` name what they acted on, as the admin API's 202 bodies do
// (`{user_id, revocation}`, `{id, revocation}`). Before, they printed `{"deleted": true}` and `{"revoked": true}`
// alone: a script given an email could not learn the id a retry takes ("users delete <id>": the email no longer finds
// a deleted user).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tempDataDir, upstreams, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

describe('users delete and api-keys revoke, --json', () => {
  const dataDir = tempDataDir();
  let configFile: string;
  const cli = (args: string[], stdin?: string) =>
    runPortcullis([...args, '--config', configFile], { ...(stdin === undefined ? {} : { stdin }), env: { PORTCULLIS_DATA_DIR: dataDir } });

  before(async () => {
    configFile = writeConfig({
      load_balancing: { upstreams: upstreams([1]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    });
    assert.equal((await cli(['migrate'])).code, 0);
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('each names its target by id', async () => {
    const created = await cli(['users', 'create', 'gone@example.com', '--json'], 'a-long-password\n');
    assert.equal(created.code, 0, created.stderr);
    const userId = (JSON.parse(created.stdout) as { user_id: string }).user_id;
    const deleted = await cli(['users', 'delete', 'gone@example.com', '--json']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(JSON.parse(deleted.stdout), { deleted: true, user_id: userId });

    const key = await cli(['api-keys', 'create', 'svc', '--json']);
    const keyId = (JSON.parse(key.stdout) as { id: string }).id;
    const revoked = await cli(['api-keys', 'revoke', keyId, '--json']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.deepEqual(JSON.parse(revoked.stdout), { revoked: true, id: keyId });
  });
});
