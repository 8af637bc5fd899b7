// The configured Redis made a replica of another server (REPLICAOF by hand, a failover tool pointed the wrong way, a
// managed Redis re-seeded from another node): it drops its dataset for that server's and refuses every write with
// READONLY, but still answers reads, so the revocation checks went on being answered from a dataset that no longer
// held the gateway's revocations, and a logged-out access token was served again (200) for as long as the server
// stayed a replica. The lost-data marker (kept:{kept}) is gone with the rest, but the check that would find it wrote
// first, was refused, and said nothing. Now a store that reads its marker missing (or replaced) while it cannot write
// it again answers no revocation check until it can (KvUnavailableError, so auth's on_store_error: 503 under deny),
// and once the server takes writes again the change log's revocations are written back (as after any loss) and the
// token is refused with 401. Our own redis-servers on free ports.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/http.js';
import { assertQuietLogs, startRedisErrorStack } from '../helpers/redis-error-stack.js';
import { bearer, type SessionBody } from '../helpers/auth-gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { freePort } from '../helpers/ports.js';
import { redisServerInstalled } from '../kv/redis-helpers.js';
import { RedisProcess, scratchDir } from '../kv/redis-processes.js';

const installed = await redisServerInstalled();
if (!installed && IN_CI) throw new Error('redis-server is not installed (CI=true: this suite must not be skipped)');
const skip = installed ? false : 'redis-server is not installed; skipped (set CI=true to make this a failure)';

test('a Redis made a replica of another server: a logged-out token is never served from the foreign dataset', { skip }, async () => {
  const stack = await startRedisErrorStack('replica-foreign');
  const { client, gw, account } = stack;
  const send = (...args: string[]) => stack.admin.sendCommand(args);
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    client.request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const me = (token: string) => client.request(`${gw.url}/me`, { headers: bearer(token) });

  // The other server: no gateway ever wrote to it.
  const otherDir = scratchDir('review11-replica-foreign-master');
  after(() => otherDir.remove());
  const otherPort = await freePort();
  const other = await RedisProcess.spawn(
    otherPort,
    ['--port', String(otherPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', otherDir.path, '--repl-diskless-sync-delay', '0'],
    `${otherDir.path}/redis.log`,
  );
  after(() => other.kill());

  // A second session, logged out: its access token is revoked in Redis only (and in the change log).
  const loginRes = await post('/auth/login', { email: account.email, password: account.password });
  assert.equal(loginRes.status, 200, loginRes.text);
  const gone = loginRes.json<SessionBody>();
  assert.equal((await post('/auth/logout', { refresh_token: gone.refresh_token }, bearer(gone.access_token))).status, 200);
  assert.equal((await me(gone.access_token)).status, 401, 'logged out');

  // The gateway says a loss only once it has read its marker before (the first read only writes it), and its
  // start-up's read can come before Redis answers: the next is a second later. Made a replica before that, it found
  // the loss and wrote the revocations back, but said nothing (seen when this ran after another file in one process).
  const marker = 'portcullis-test:review9-replica-foreign:kept:{kept}';
  await waitFor('the gateway to write its marker', async () => (await send('EXISTS', marker)) === 1, 5_000);
  await send('REPLICAOF', '127.0.0.1', String(otherPort));
  await waitFor('the full sync from the other server', async () => /master_link_status:up/.test(String(await send('INFO', 'replication'))), 10_000);
  assert.equal(await send('EXISTS', marker), 0, "the gateway's marker went with the dataset");

  // The poller looks at the marker once a second: give it two looks, then the logged-out token must never be served.
  await waitFor('the revocation checks to stop trusting the foreign dataset', async () => (await me(gone.access_token)).status !== 200, 3_000);
  for (let i = 0; i < 10; i++) {
    const res = await me(gone.access_token);
    assert.equal(res.status, 503, `a logged-out token while the revocations are unknown (${i}): ${res.text}`);
    assert.equal(res.json<{ code?: string }>().code, 'kv_unavailable');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await me(account.access_token)).status, 503, 'no revocation can be read: auth on_store_error deny');

  // Writable again: the revocations are written back from the change log and the token is refused for what it is.
  await send('REPLICAOF', 'NO', 'ONE');
  await stack.untilReady(200, '/ready 200 once writable', 5_000);
  await waitFor('the revocations written back', async () => (await me(account.access_token)).status === 200, 5_000);
  assert.equal((await me(gone.access_token)).status, 401, 'the logged-out token, refused again');
  assert.ok(
    gw.logs.some((l) => l.msg === 'Revocations Lost'),
    'the loss is logged',
  );
  assertQuietLogs(stack, [/read only replica/i]);
});
