// `users delete --json` and `api-keys revoke --json` name what they acted on, as the admin API's 202 bodies do
// (`{user_id, revocation}`, `{id, revocation}`). Before, they printed `{"deleted": true}` and `{"revoked": true}`
// alone: a script given an email could not learn the id a retry takes ("users delete <id>": the email no longer finds
// a deleted user).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { identityCliStore } from '../helpers/identity.js';

describe('users delete and api-keys revoke, --json', () => {
  const { cli } = identityCliStore();

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
