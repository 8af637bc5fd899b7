// Revocations pending on a Redis Cluster (admin logouts answered 202 while their masters refused writes) are written
// each on its own once their master answers: a master that still refuses writes holds back its own revocations only.
// Before, the change poller retried the queue in order and stopped at the first refusal, so one revocation on a
// master still refusing writes held back every other, and their users' tokens were accepted until that master came
// back. Writes are refused with min-replicas-to-write above the replica count (NOREPLICAS; reads still answered).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { bearer, FAST_ARGON2, proxiedGet, register, TEST_SECRET, type SessionBody } from '../helpers/auth-gateway.js';
import { hashSlot, subjectRevokedKey } from '../../src/kv/redis-keys.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, run, servesSlot, ThrowawayCluster, type ClusterNodeView } from '../kv/redis-processes.js';
import { waitFor } from '../helpers/wait.js';

const skip = await requireRedisServer();
const client = createClient();
const prefix = uniquePrefix('revocations-one-master');
let cluster: ThrowawayCluster;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  if (skip) return;
  cluster = await ThrowawayCluster.start();
  backend = await startBackend('echo');
  gw = await startInProcess({
    admin: { token: ADMIN_TOKEN },
    redis: { cluster: cluster.seeds, key_prefix: prefix, command_timeout: '500ms' },
    jwt: { secret: TEST_SECRET },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
  });
  await waitFor(async () => (await client.request(`${gw.adminUrl}/ready`)).status === 200, 'the gateway to reach the cluster', 15_000);
});
after(async () => {
  await gw?.close();
  await backend?.stop();
  await client.close();
  await cluster?.stop();
});

/** Refuses (`on`) or allows writes on a master: it has one replica, so requiring 3 refuses every write. */
const refuseWrites = (master: ClusterNodeView, on: boolean) => run('redis-cli', ['-p', String(master.port), 'CONFIG', 'SET', 'min-replicas-to-write', on ? '3' : '0']);

test('a revocation whose master answers again is written while another master still refuses writes', { skip, timeout: 60_000 }, async () => {
  const admin = adminApi(client, gw.adminUrl!);
  const masters = await cluster.masters();
  const masterOf = (user: SessionBody) => masters.find((m) => servesSlot(m.slots, hashSlot(subjectRevokedKey(prefix, `user:${user.user_id}`))))!;
  // Two users whose revocations live on two different masters.
  const first = await register({ client, url: gw.url });
  let second = await register({ client, url: gw.url });
  while (masterOf(second).id === masterOf(first).id) second = await register({ client, url: gw.url });
  const [stuck, healed] = [masterOf(first), masterOf(second)];
  const status = async (user: SessionBody) => (await proxiedGet({ client, url: gw.url }, '/x', bearer(user.access_token))).res.status;
  assert.equal(await status(first), 200);
  assert.equal(await status(second), 200);

  await refuseWrites(stuck, true);
  await refuseWrites(healed, true);
  try {
    assert.equal((await admin.post(`/admin/users/${first.user_id}/logout`)).status, 202, 'pending: its master refuses writes');
    assert.equal((await admin.post(`/admin/users/${second.user_id}/logout`)).status, 202, 'pending too');
    await refuseWrites(healed, false);
    // The change poller writes it within a second of its master answering; the other master still refuses.
    await waitFor(async () => (await status(second)) === 401, 'the revocation on the master that answers again to be written', 10_000);
    // The token is refused as soon as its revocation is in Redis; the poller logs once every write of its batch has
    // settled, the one its stuck master refuses included, which may come later on a loaded machine.
    await waitFor(() => gw.logs.some((l) => l.msg === 'Revocations Applied' && l.applied === 1 && l.pending === 1), 'the poller to log one applied, one still pending', 5_000);
  } finally {
    await refuseWrites(stuck, false);
    await refuseWrites(healed, false);
  }
  await waitFor(async () => (await status(first)) === 401, 'the last revocation to be written once its master answers', 10_000);
});
