// An admin action during a Redis outage, end to end on SQLite and PostgreSQL, with a redis-server of our own that is
// paused (SIGSTOP), killed and restarted: the store change is committed, answered 202 with `revocation: "pending"`
// (not a 503 that reads as "nothing happened"), audited and counted; a retry re-attempts the revocation (a retried
// delete or key revocation too, instead of a 404); once Redis answers again the gateways write the revocation from the
// change log, so the credentials are refused without anyone repeating the action. The CLI: exit 3, notice on stderr.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cliHashChild } from '../helpers/hash-children.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, IN_CI, type TestResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi, runPortcullis } from '../helpers/identity.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import { onIsolatedPostgres } from '../helpers/postgres-db.js';
import { bearer, FAST_ARGON2, proxiedGet, register, TEST_SECRET } from '../helpers/auth-gateway.js';
import { freePort, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';

// Our own redis-server (never the shared one on 6379, which other suites use): this suite stops it.
const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: the outage suite must not be skipped)');
const skipNoRedis = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

const client = createClient();
let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await client.close();
  await backend?.stop();
});

type UserJson = { user_id: string; email: string; disabled: boolean; active_sessions: number };
type PendingJson = { revocation?: string; warning?: string };

/** A 202 whose body says the revocation is pending, with the warning and nothing internal. */
function assertPending(res: TestResponse): void {
  assert.equal(res.status, 202, res.text);
  const body = res.json<PendingJson>();
  assert.equal(body.revocation, 'pending');
  assert.match(String(body.warning), /Redis/);
  assert.ok(!res.text.includes('    at '), 'no stack trace');
  assert.doesNotMatch(res.text, /redis:\/\/|127\.0\.0\.1|ECONN|Timeout/i, 'no address or driver detail');
}

function suite(engine: 'sqlite' | 'postgres', database: () => Record<string, unknown>) {
  describe(`revocation pending during a Redis outage, on ${engine}`, { skip: skipNoRedis }, () => {
    const dataDir = tempDataDir();
    let redis: ThrowawayRedis;
    let gw: InProcessGateway;
    let admin: ReturnType<typeof adminApi>;
    let configFile: string;
    const stack = () => ({ client, url: gw.url });

    before(async () => {
      redis = new ThrowawayRedis(await freePort());
      await redis.start();
      const config = {
        database: database(),
        redis: { url: redis.url, key_prefix: `portcullis-test:pending:${runId()}:` },
        load_balancing: { upstreams: upstreams([backend.port]) },
        jwt: { secret: TEST_SECRET },
        // Logins from 127.0.0.1 while Redis is out: the brute-force protections (on with auth) would answer 429, or
        // 503 (their on_store_error: deny); this suite is about the revocations alone.
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
      };
      configFile = writeConfig(config);
      gw = await startInProcess({ ...config, admin: { token: ADMIN_TOKEN } }, dataDir);
      admin = adminApi(client, gw.adminUrl!);
      await waitFor('the gateway to reach redis', async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 10_000);
    });
    after(async () => {
      await gw?.close();
      await redis?.kill();
    });

    /** Runs `during` with Redis paused (every command times out after redis.command_timeout), then resumes it. */
    async function whileRedisPaused<T>(during: () => Promise<T>): Promise<T> {
      redis.signal('SIGSTOP');
      try {
        return await during();
      } finally {
        redis.signal('SIGCONT');
      }
    }

    const audits = (action: string, target: string) =>
      gw.logs.filter((l) => l.msg === 'admin_action' && l.action === action && l.target_id === target);
    const counted = async (action: string): Promise<number> =>
      sampleValue((await admin.get('/metrics')).text, 'portcullis_admin_actions_total', { actor: 'admin', action }) ?? 0;
    const statusWith = async (token: string): Promise<number> => (await proxiedGet(stack(), '/x', bearer(token))).res.status;

    test('disable, logout, set-password: 202 pending, committed, audited and counted; retried; refused once Redis is back', async () => {
      const user = await register(stack());
      const other = await register(stack());
      const third = await register(stack());
      assert.equal(await statusWith(user.access_token), 200);
      const [disables, logouts, resets] = [await counted('disable'), await counted('logout'), await counted('set_password')];

      // Paused, and never resumed: it is killed below while still stopped, so no write reaches it in between.
      redis.signal('SIGSTOP');
      try {
        const disabled = await admin.post(`/admin/users/${user.user_id}/disable`);
        assertPending(disabled);
        assert.equal(disabled.json<UserJson>().disabled, true, 'the body is the user, as a 200 has it');
        assert.equal(disabled.json<UserJson>().active_sessions, 0);
        const loggedOut = await admin.post(`/admin/users/${other.user_id}/logout`);
        assertPending(loggedOut);
        assert.equal(loggedOut.json<UserJson>().user_id, other.user_id);
        assertPending(await admin.post(`/admin/users/${third.user_id}/password`, { password: 'Brand-new-password-9' }));
        // A retry is safe: the action is repeated and the revocation attempted again (still pending here).
        assertPending(await admin.post(`/admin/users/${user.user_id}/disable`));
      } catch (err) {
        redis.signal('SIGCONT');
        throw err;
      }

      // Committed: the store has them.
      const shown = await admin.get(`/admin/users/${user.user_id}`);
      assert.equal(shown.json<UserJson>().disabled, true);
      assert.equal((await client.postJson(`${gw.url}/auth/login`, { email: third.email, password: third.password })).status, 401);
      assert.equal((await client.postJson(`${gw.url}/auth/login`, { email: third.email, password: 'Brand-new-password-9' })).status, 200);
      // Audited, with the pending revocation, and counted: once per committed action.
      assert.equal(audits('disable', user.user_id).length, 2);
      assert.equal(audits('disable', user.user_id)[0]!.revocation, 'pending');
      assert.equal(audits('logout', other.user_id).length, 1);
      assert.equal(audits('set_password', third.user_id).length, 1);
      assert.equal(await counted('disable'), disables + 2);
      assert.equal(await counted('logout'), logouts + 1);
      assert.equal(await counted('set_password'), resets + 1);
      const pendingLines = gw.logs.filter((l) => l.msg === 'Revocation Pending' && l.target_id === user.user_id);
      assert.equal(pendingLines.length, 2);
      assert.match(String(pendingLines[0]!.cause), /^KvUnavailableError/);
      for (const line of gw.logs.filter((l) => l.msg === 'Revocation Pending' || l.msg === 'admin_action')) {
        assert.ok(!JSON.stringify(line).includes('@example.com'), 'no email in the log');
        assert.ok(!JSON.stringify(line).includes('Brand-new-password'), 'no secret in the log');
      }

      // Redis dies while paused and comes back empty: the writes the paused server had queued are lost with it, so
      // only the gateways' change-log replay can refuse these tokens now. It does, without any action repeated.
      redis.signal('SIGKILL');
      await redis.kill();
      await redis.start();
      for (const token of [user.access_token, other.access_token, third.access_token]) {
        await waitFor('the revocation to reach the restarted Redis', async () => (await statusWith(token)) === 401, 10_000, 100);
      }
      assert.ok(gw.logs.some((l) => l.msg === 'Revocations Applied'), 'the catch-up is logged');
      // With Redis up, the same action answers as usual.
      assert.equal((await admin.post(`/admin/users/${user.user_id}/disable`)).status, 200);
    });

    test('delete: 202 pending, the user gone; a retry is 202 again, not a 404 that hides it, then 404 once written', async () => {
      const user = await register(stack());
      const deletes = await counted('delete');
      await whileRedisPaused(async () => {
        const deleted = await admin.delete(`/admin/users/${user.user_id}`);
        assertPending(deleted);
        assert.equal(deleted.json<{ user_id: string }>().user_id, user.user_id);
        assert.equal((await admin.get(`/admin/users/${user.user_id}`)).status, 404, 'the delete is committed');
        // Retried while Redis is still down: the revocation is still pending, and the answer says so.
        assertPending(await admin.delete(`/admin/users/${user.user_id}`));
      });
      assert.equal(audits('delete', user.user_id).length, 1, 'one committed delete, one audit line');
      assert.equal(await counted('delete'), deletes + 1);
      // Retried with Redis back: the revocation is written first, then the user is unknown, as for any repeated delete.
      assert.equal((await admin.delete(`/admin/users/${user.user_id}`)).status, 404);
      assert.equal(await statusWith(user.access_token), 401);
      assert.equal(audits('delete', user.user_id).length, 1, 'a retry changes nothing in the store, so it is no new action');
      // An id that never existed (or whose deletion is older than every token) is still unknown.
      assert.equal((await admin.delete('/admin/users/00000000-0000-4000-8000-000000000000')).status, 404);
    });

    test('API-key revocation: 202 pending, refused on this gateway at once; a retry is 202, then 404 once written', async () => {
      const created = await admin.post('/admin/api-keys', { name: 'pending-svc' });
      assert.equal(created.status, 201, created.text);
      const key = created.json<{ id: string; key: string }>();
      assert.equal((await proxiedGet(stack(), '/svc', { 'x-api-key': key.key })).res.status, 200, 'cached by the gateway');
      await whileRedisPaused(async () => {
        const revoked = await admin.delete(`/admin/api-keys/${key.id}`);
        assertPending(revoked);
        assert.equal(revoked.json<{ id: string }>().id, key.id);
        assertPending(await admin.delete(`/admin/api-keys/${key.id}`));
      });
      assert.equal(audits('revoke_api_key', key.id).length, 1);
      assert.equal((await proxiedGet(stack(), '/svc', { 'x-api-key': key.key })).res.status, 401);
      assert.equal((await admin.delete(`/admin/api-keys/${key.id}`)).status, 404);
      assert.equal((await admin.delete('/admin/api-keys/0123456789abcdef')).status, 404);
    });

    test('CLI set-password while Redis stalls after the commit: exit 3, the notice on stderr, audited as pending', async () => {
      const user = await register(stack());
      const running = runPortcullis(['users', 'set-password', user.email, '--config', configFile], {
        stdin: 'Brand-new-password-7\n',
        env: { PORTCULLIS_DATA_DIR: dataDir },
      });
      // The CLI connects to Redis as it opens and waits for it only at the revocation's write; Redis is paused while
      // the new password hashes, so the store change commits and only the revocation after it meets the outage.
      const hasher = await cliHashChild();
      process.kill(hasher, 'SIGSTOP');
      redis.signal('SIGSTOP');
      process.kill(hasher, 'SIGCONT');
      let run;
      try {
        run = await running;
      } finally {
        redis.signal('SIGCONT');
      }
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /portcullis: the password is set, but its revocation did not reach Redis \(KvUnavailableError/);
      assert.ok(run.stderr.includes(`portcullis users set-password ${user.user_id}`), 'the retry command names the id');
      assert.ok(!run.stderr.includes('Brand-new-password'), 'no secret on stderr');
      assert.ok(run.stdout.includes(user.user_id), 'the user is printed as usual');
      const audit = run.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'admin_action');
      assert.equal(audit?.action, 'set_password');
      assert.equal(audit?.revocation, 'pending');
      assert.equal((await client.postJson(`${gw.url}/auth/login`, { email: user.email, password: 'Brand-new-password-7' })).status, 200);
      // The gateway applies the CLI's change from the log: the old token is refused.
      await waitFor('the old token to be refused', async () => (await statusWith(user.access_token)) === 401, 10_000, 100);
    });
  });
}

suite('sqlite', () => ({}));

await onIsolatedPostgres('revocation pending on postgres', 'pending', suite);
