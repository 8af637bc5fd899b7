// A Redis Cluster master whose link from the gateway goes silent (a network partition: packets dropped, no RST, no
// FIN) while the gateway runs under steady proxied load (on_store_error: deny: a request Redis could not decide is a
// 503). The master announces itself at a TCP link the test silences (cluster-announce-port), so the gateway and the
// replica reach it through the link; the cluster bus does not, so the cluster itself sees nothing wrong.
// 1. The open connections go silent, the master answers new ones: its slots' requests answer within the command
//    timeout (503), the other slots' requests are never held, and its slots are decided again within the bound.
// 2. The master is cut off entirely (new connections silent too) and its replica takes over (CLUSTER FAILOVER
//    TAKEOVER): the gateway moves to it within seconds, without a restart.
// Servers of our own on free ports; never the shared Redis on 6379.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js';
import { bucketKey, hashSlot, revokedKey } from '../../src/kv/redis-keys.js';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { decidedAgainAfter } from '../kv/full-queue.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, run, servesSlot, ThrowawayCluster, until, type ClusterNodeView } from '../kv/redis-processes.js';
import { authConfig, bearer, register, runId, type Session } from './ratelimit-helpers.js';
import { countStatuses, pickClients, startLoad, type Load, type Sample } from './steady-load.js';

const skip = await requireRedisServer();

const COMMAND_TIMEOUT_MS = 500;
/** A request is answered within the command timeout plus the gateway's own work; 3 s leaves room for a loaded machine. */
const ANSWER_BOUND_MS = 3_000;
/** From the silence (or the takeover) to decisions by Redis again: the silence bound (2 s), a reconnect, and room. */
const RECOVERY_BOUND_MS = 10_000;

describe('Redis Cluster: a master behind a silent link', { skip }, () => {
  let cluster: ThrowawayCluster;
  let link: TcpForwarder;
  let victim: ClusterNodeView;
  let backend: TestBackend;
  let gw: InProcessGateway;
  const http = createClient();
  const prefix = uniquePrefix('cluster-silent');
  let onVictim: string[] = [];
  let elsewhere: string[] = [];
  /** A user whose access token's revocation key is on the victim's slots. */
  let victimUser: Session;

  before(async () => {
    cluster = await ThrowawayCluster.start(3, 1_000);
    victim = (await cluster.masters())[0]!;
    link = await startTcpForwarder('127.0.0.1', victim.port);
    await run('redis-cli', ['-p', String(victim.port), 'CONFIG', 'SET', 'cluster-announce-port', String(link.port)], 5_000);
    await until('every node to know the master at the link', async () => {
      for (const node of cluster.nodes) if (!(await cluster.topology(node.port)).some((v) => v.id === victim.id && v.port === link.port)) return false;
      return true;
    }, 15_000, 100);
    onVictim = pickClients(10, (bucket) => servesSlot(victim.slots, hashSlot(bucketKey(prefix, bucket))));
    elsewhere = pickClients(10, (bucket) => !servesSlot(victim.slots, hashSlot(bucketKey(prefix, bucket))));
    backend = await startBackend('one');
    gw = await startInProcess({
      server: { trusted_proxies: ['127.0.0.1'] },
      admin: { enabled: false },
      // Seeds other than the victim: discovery is not what is tested here.
      redis: { cluster: cluster.nodes.filter((n) => n.port !== victim.port).map((n) => n.url), key_prefix: prefix, command_timeout: `${COMMAND_TIMEOUT_MS}ms` },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: {
        // auth's on_store_error is deny by default: a token whose revocation could not be read is refused with 503.
        auth: authConfig({ public_paths: ['/warm', '/victim', '/other'] }),
        rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 1_000_000, on_store_error: 'deny', auth: { requests_per_minute: 1, burst_size: 500 } },
      },
    });
    await waitFor('every slot to be decided by Redis', async () => {
      for (const client of [...onVictim, ...elsewhere]) {
        if ((await http.request(`${gw.url}/warm`, { headers: { 'x-forwarded-for': client } })).status !== 200) return false;
      }
      return true;
    }, 15_000);
    for (let i = 0; victimUser === undefined; i++) {
      assert.ok(i < 60, 'no access token landed on the victim');
      const session = await register(http, gw.url, `u${i}@cluster-silent-${runId()}.test`);
      const jti = (JSON.parse(Buffer.from(session.accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string }).jti;
      if (servesSlot(victim.slots, hashSlot(revokedKey(prefix, jti)))) victimUser = session;
    }
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
    await http.close();
    await link?.close();
    await cluster?.stop();
  });

  /** Load on the victim's slots and elsewhere, each request's time kept. */
  function startTimedLoad(): { victimLoad: Load; otherLoad: Load; stop(): Promise<void> } {
    const victimLoad = startLoad(`${gw.url}/victim`, onVictim, 2);
    const otherLoad = startLoad(`${gw.url}/other`, elsewhere, 2);
    return { victimLoad, otherLoad, stop: async () => void (await Promise.all([victimLoad.stop(), otherLoad.stop()])) };
  }

  /** Waits until the victim's slots answer 200 for 1.5 s running after `from`; returns when that began. */
  async function decidedAgain(load: Load, from: number): Promise<number> {
    let at = 0;
    await waitFor("the master's slots to be decided by Redis again", () => {
      const since = load.samples.filter((s) => s.at > from);
      const tail = since.slice(since.findLastIndex((s) => s.status !== 200) + 1);
      if (tail.length === 0 || tail[tail.length - 1]!.at - tail[0]!.at < 1_500) return false;
      at = tail[0]!.at;
      return true;
    }, RECOVERY_BOUND_MS, 50);
    return at;
  }

  /** Every request answered (200, or deny's 503), within the answer bound (the gap between a worker's answers). */
  function assertAnsweredInTime(samples: readonly Sample[], what: string): void {
    const statuses = countStatuses(samples);
    assert.deepEqual(Object.keys(statuses).filter((s) => s !== '200' && s !== '503'), [], `${what}: ${JSON.stringify(statuses)}`);
  }

  test('silent connections: its slots answer 503 within the command timeout, others are not held, and it is reconnected', async () => {
    const load = startTimedLoad();
    try {
      await waitFor('load to flow', () => load.victimLoad.samples.length > 50 && load.otherLoad.samples.length > 50, 10_000);
      const silencedAt = load.victimLoad.now();
      const otherFrom = load.otherLoad.now();
      link.blackHole(); // the open connections drop every byte both ways; new ones reach the master
      // A protected request whose token's revocation key is on the silent master: auth's policy (deny: 503), in time.
      const authSent = performance.now();
      const authed = await http.request(`${gw.url}/private`, { headers: bearer(victimUser) });
      const authMs = performance.now() - authSent;
      const slowest = { ms: 0 };
      const timer = setInterval(() => {
        // The longest a request on the victim's slots has been waiting shows as the gap between answers.
        const last = load.victimLoad.samples.at(-1);
        if (last !== undefined) slowest.ms = Math.max(slowest.ms, load.victimLoad.now() - last.at);
      }, 50);
      const recoveredAt = await decidedAgain(load.victimLoad, silencedAt).finally(() => clearInterval(timer));
      const others = load.otherLoad.samples.filter((s) => s.at > otherFrom);
      console.log(`# silent link: decided again ${(recoveredAt - silencedAt).toFixed(0)} ms after; victim ${JSON.stringify(countStatuses(load.victimLoad.samples))}, others ${JSON.stringify(countStatuses(others))}`);
      assertAnsweredInTime(load.victimLoad.samples, "the master's slots");
      assert.ok(slowest.ms < ANSWER_BOUND_MS, `a request on the silent master's slots waited ${slowest.ms.toFixed(0)} ms`);
      assert.deepEqual(countStatuses(others), { 200: others.length }, 'the other slots are decided throughout');
      assert.equal(authed.status, 503, `a token whose revocation could not be read: ${authed.text}`);
      assert.ok(authMs < ANSWER_BOUND_MS, `the protected request waited ${authMs.toFixed(0)} ms`);
      const recheck = await http.request(`${gw.url}/private`, { headers: bearer(victimUser) });
      assert.equal(recheck.status, 200, `the token is checked again once the master is reconnected: ${recheck.text}`);
    } finally {
      await load.stop();
    }
  });

  test('silent connections with more commands waiting than the pending-command limit: reconnected within the bound too', async () => {
    // A store of its own whose limit of 20 pending commands stands for the default 10,000 under a heavy load: the
    // silent connection's queue fills well before the silence bound, and the commands after it are refused at once.
    const storePrefix = uniquePrefix('cluster-silent-queue');
    const store = createRedisKvStore({ cluster: cluster.nodes.filter((n) => n.port !== victim.port).map((n) => n.url), keyPrefix: storePrefix, commandTimeoutMs: COMMAND_TIMEOUT_MS, maxPendingCommands: 20 });
    try {
      const buckets = pickClients(15, (bucket) => servesSlot(victim.slots, hashSlot(bucketKey(storePrefix, bucket)))).map((a) => `p:${a}`);
      const rule = { capacity: 1_000_000, refillPerSecond: 0.001 };
      const round = () => Promise.allSettled(buckets.map((b) => store.take(b, rule)));
      await until('the store to decide the master\'s slots', async () => (await round()).every((r) => r.status === 'fulfilled'), 15_000, 100);
      link.blackHole();
      // 5 takes every 50 ms, not waiting for their answers: the queue is full before the first command timeout.
      const recoveredAfter = await decidedAgainAfter((b) => store.take(b, rule), buckets, COMMAND_TIMEOUT_MS, RECOVERY_BOUND_MS);
      console.log(`# full queue: decided again after ${recoveredAfter?.toFixed(0)} ms`);
      assert.notEqual(recoveredAfter, undefined, `no round decided by Redis within ${RECOVERY_BOUND_MS} ms of the silence`);
    } finally {
      await store.close();
    }
  });

  test('cut off entirely for a while, no takeover: its slots answer 503 in time, and are decided again once the link returns', async () => {
    const load = startTimedLoad();
    try {
      await waitFor('load to flow', () => load.victimLoad.samples.length > 20, 10_000);
      link.partition(); // new connections are accepted and never answered, as behind a middlebox
      await new Promise((r) => setTimeout(r, 5_000));
      const healedAt = load.victimLoad.now();
      link.heal();
      const recoveredAt = await decidedAgain(load.victimLoad, healedAt);
      console.log(`# partition: decided again ${(recoveredAt - healedAt).toFixed(0)} ms after the link returned; victim ${JSON.stringify(countStatuses(load.victimLoad.samples))}`);
      assertAnsweredInTime(load.victimLoad.samples, "the master's slots");
      assert.deepEqual(countStatuses(load.otherLoad.samples), { 200: load.otherLoad.samples.length }, 'the other slots are decided throughout');
    } finally {
      await load.stop();
    }
  });

  test('cut off entirely, its replica takes over: the gateway follows within seconds', async () => {
    const replica = (await cluster.topology()).find((v) => v.masterId === victim.id)!;
    const load = startTimedLoad();
    try {
      await waitFor('load to flow', () => load.victimLoad.samples.length > 20, 10_000);
      link.partition(); // the gateway and the replica reach it no more; the cluster bus does
      await new Promise((r) => setTimeout(r, 1_000));
      const takeoverAt = load.victimLoad.now();
      await run('redis-cli', ['-p', String(replica.port), 'CLUSTER', 'FAILOVER', 'TAKEOVER'], 5_000);
      await until('the replica to serve the slots', async () => (await cluster.topology(replica.port)).some((v) => v.id === replica.id && v.flags.includes('master')), 10_000, 100);
      const recoveredAt = await decidedAgain(load.victimLoad, takeoverAt);
      console.log(`# takeover: decided again ${(recoveredAt - takeoverAt).toFixed(0)} ms after; victim ${JSON.stringify(countStatuses(load.victimLoad.samples))}`);
      assertAnsweredInTime(load.victimLoad.samples, "the master's slots");
      const others = countStatuses(load.otherLoad.samples);
      assert.deepEqual(others, { 200: load.otherLoad.samples.length }, 'the other slots are decided throughout');
    } finally {
      await load.stop();
    }
  });
});
