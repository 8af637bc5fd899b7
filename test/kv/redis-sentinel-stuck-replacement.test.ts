// A silent-link replacement that never becomes ready must not keep the store from replacing the next silent link.
// The sentinels are [good, stale]: the stale one names a master address that refuses. The store's link goes silent
// before its first reply (a NAT or conntrack entry dropped: new connections still pass), so the replacement asks from
// the stale sentinel on and never becomes ready; the old link happens to recover. When the link went silent a second
// time, the pending replacement made the store do nothing, and the rotation watch, which judges only the current
// client, saw it healthy: no take was decided again (a fix review's repro). The stuck replacement is now dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createRedisKvStore } from '../../src/kv/redis.js';
import { startFakeSentinel } from '../helpers/fake-sentinel.js';
import { closedPort } from '../helpers/backends.js';
import { freePort } from '../helpers/ports.js';
import { uniquePrefix } from './redis-helpers.js';
import { RedisProcess, requireRedisServer, scratchDir } from './redis-processes.js';

const skip = await requireRedisServer();
const RULE = { capacity: 1e9, refillPerSecond: 1 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP relay to `port` whose connections so far can be made silent (read and dropped both ways); new ones pass. */
async function silenceableRelay(port: number): Promise<{ port: number; silenceExisting(): void; close(): Promise<void> }> {
  const pairs: Array<[Socket, Socket]> = [];
  const all = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    for (const s of [down, up]) {
      all.add(s);
      s.once('close', () => all.delete(s));
      s.on('error', () => undefined);
    }
    down.pipe(up);
    up.pipe(down);
    pairs.push([down, up]);
  });
  const own = await freePort();
  await new Promise<void>((resolve) => server.listen(own, '127.0.0.1', resolve));
  return {
    port: own,
    silenceExisting() {
      for (const [down, up] of pairs.splice(0)) {
        down.unpipe(up);
        up.unpipe(down);
        down.removeAllListeners('data');
        up.removeAllListeners('data');
        down.on('data', () => undefined);
        up.on('data', () => undefined);
      }
    },
    async close() {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Takes every 100 ms until one is decided: how long it took, or undefined after `ms`. */
async function firstDecidedWithin(store: ReturnType<typeof createRedisKvStore>, ms: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await store.take('bucket', RULE).then(() => true, () => false)) return Date.now() - started;
    await sleep(100);
  }
  return undefined;
}

test('a replacement that asks a stale sentinel first and never becomes ready does not block the next one', { skip, timeout: 120_000 }, async () => {
  const dir = scratchDir('sentinel-stuck-replacement');
  const masterPort = await freePort();
  const master = await RedisProcess.spawn(masterPort, ['--port', String(masterPort), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--dir', dir.path], `${dir.path}/master.log`);
  const relay = await silenceableRelay(masterPort);
  const good = await startFakeSentinel(relay.port);
  const stale = await startFakeSentinel(await closedPort());
  const store = createRedisKvStore({ sentinel: { name: 'mymaster', nodes: [good.url, stale.url] }, keyPrefix: uniquePrefix('sentinel-stuck-replacement'), commandTimeoutMs: 500 });
  try {
    await store.untilConnected();
    relay.silenceExisting(); // before any command had a reply
    assert.notEqual(await firstDecidedWithin(store, 15_000), undefined, 'decided again after the first silence');
    await sleep(4_000);
    relay.silenceExisting(); // the link that had replies, silent now
    assert.notEqual(await firstDecidedWithin(store, 20_000), undefined, 'decided again after the second silence');
  } finally {
    await store.close().catch(() => undefined);
    await good.close();
    await stale.close();
    await relay.close();
    await master.kill();
    dir.remove();
  }
});
