// A Redis Cluster master that is healthy but busy: its connection's command queue is full (maxPendingCommands) and
// stays full, because every reply frees a place that the next waiting command takes at once, while the master answers
// steadily. A pause of the master (SIGSTOP for 0.8 s, shorter than the silence bound) makes commands meet the command
// timeout, so the store probes that connection for silence (a PING, refused while the queue is full). The master is
// not silent: replies keep coming, so its connection must not be ended (ending it fails every command in flight on it
// and opens a new connection, again after each timeout: a replacement storm under ordinary heavy load).
// Servers of our own on free ports; never the shared Redis on 6379.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketKey, hashSlot } from '../../src/kv/redis-keys.js';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { startTakeLoad, type TakeLoad } from '../kv/take-load.js';
import { infoField, requireRedisServer, servesSlot, ThrowawayCluster, until, type ClusterNodeView } from '../kv/redis-processes.js';
import { pickClients } from './steady-load.js';

const skip = await requireRedisServer();

const COMMAND_TIMEOUT_MS = 500;
/** The store's silence bound with these settings: max(connect timeout 2 s, 2 x command timeout). */
const SILENCE_BOUND_MS = 2_000;

let cluster: ThrowawayCluster;
let master: ClusterNodeView;
before(async () => {
  if (skip !== false) return;
  // A node timeout far above the pause: the cluster itself must not fail the master over.
  cluster = await ThrowawayCluster.start(3, 10_000);
  master = (await cluster.masters())[0]!;
});
after(async () => {
  await cluster?.stop();
});

async function connectionsReceived(port: number): Promise<number> {
  return Number(await infoField(port, 'stats', 'total_connections_received'));
}

test('a busy master whose queue stays full is not taken for silent when a pause makes commands time out', { skip }, async () => {
  const prefix = uniquePrefix('cluster-busy-queue');
  const store: RedisKvStore = createRedisKvStore({ cluster: cluster.nodes.map((n) => n.url), keyPrefix: prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS, maxPendingCommands: 20 });
  let load: TakeLoad | undefined;
  try {
    const buckets = pickClients(15, (bucket) => servesSlot(master.slots, hashSlot(bucketKey(prefix, bucket)))).map((a) => `p:${a}`);
    const rule = { capacity: 1_000_000, refillPerSecond: 0.001 };
    await until("the store to decide the master's slots", async () => (await Promise.allSettled(buckets.map((b) => store.take(b, rule)))).every((r) => r.status === 'fulfilled'), 15_000, 100);
    // 40 closed-loop workers for 20 places: whenever a reply frees a place, a waiting worker takes it.
    const takes = (load = startTakeLoad((b) => store.take(b, rule), 40, (w, i) => buckets[(w + i) % buckets.length]!));
    await until('the load to be decided', async () => takes.decided > 200, 10_000, 50);
    const connectionsBefore = await connectionsReceived(master.port);
    // Commands meet the command timeout (the master pauses 0.8 s), the master answers again well within the bound.
    const process = cluster.nodes.find((n) => n.port === master.port)!;
    process.signal('SIGSTOP');
    await new Promise((r) => setTimeout(r, 800));
    process.signal('SIGCONT');
    const decidedAfterPause = takes.decided;
    // Longer than the bound plus its check: a silence verdict would have ended the connection by then.
    await new Promise((r) => setTimeout(r, SILENCE_BOUND_MS + 2_000));
    const opened = (await connectionsReceived(master.port)) - connectionsBefore;
    console.log(`# decided ${takes.decided} (${takes.decided - decidedAfterPause} after the pause); failures ${JSON.stringify(Object.fromEntries(takes.failures))}; connections opened meanwhile ${opened}`);
    assert.ok(takes.decided - decidedAfterPause > 200, 'the master answered steadily after its pause');
    // The INFO's own connection is the only new one.
    assert.equal(opened, 1, "the busy master's connection was ended and opened again");
    const disconnected = [...takes.failures.keys()].filter((cause) => /disconnect|closed|no reply on the connection/i.test(cause));
    assert.deepEqual(disconnected, [], 'commands failed because their connection was ended');
  } finally {
    await load?.stop();
    await store.close();
  }
});
