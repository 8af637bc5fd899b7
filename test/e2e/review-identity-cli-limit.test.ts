// `users list --limit` follows the admin API's `?limit=` rule: decimal digits, 1 to 100. Before, the CLI read the
// value with Number(), so `1e1`, `0x10`, ` 5`, `5.0` and `+5` listed a page (exit 0) where the API answered 400.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { adminApi, ADMIN_TOKEN, runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();

describe('users list --limit and ?limit= take the same values', () => {
  const dataDir = tempDataDir();
  let configFile: string;
  let gw: InProcessGateway;
  const config = {
    load_balancing: { upstreams: upstreams([1]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  };
  const cli = (args: string[]) => runPortcullis([...args, '--config', configFile], { env: { PORTCULLIS_DATA_DIR: dataDir } });

  before(async () => {
    configFile = writeConfig(config);
    gw = await startInProcess({ ...config, admin: { token: ADMIN_TOKEN } }, dataDir);
  });
  after(async () => {
    await gw?.close();
    await client.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a value the API refuses is bad usage (exit 2); one it takes lists', async () => {
    const admin = adminApi(client, gw.adminUrl!);
    for (const value of ['1e1', '0x10', ' 5', '5.0', '+5', '0', '101', '']) {
      const api = await admin.get(`/admin/users?limit=${encodeURIComponent(value)}`);
      assert.equal(api.status, 400, `?limit=${value}`);
      const run = await cli(['users', 'list', '--limit', value]);
      assert.equal(run.code, 2, `--limit "${value}": ${run.stdout}${run.stderr}`);
      assert.ok(run.stderr.startsWith('portcullis: --limit must be an integer from 1 to 100\n'), run.stderr);
    }
    for (const value of ['1', '007', '100']) {
      assert.equal((await admin.get(`/admin/users?limit=${value}`)).status, 200, `?limit=${value}`);
      const run = await cli(['users', 'list', '--limit', value, '--json']);
      assert.equal(run.code, 0, `--limit ${value}: ${run.stderr}`);
    }
  });
});
