// The Redis store's take carries a deadline on Redis's clock (the script spends nothing once the gateway has given up
// on it), from an estimate of Redis's clock made from earlier replies. Each sample is behind by how long the reply
// waited to be read: a first reply read late (the process busy at start-up, a slow link back) left the estimate behind
// by almost the command timeout, and every take of the next seconds whose trip took longer than what was left came
// back "late" from a healthy Redis that had answered in time: a store error, so the request went through uncounted
// (`on_store_error: allow`) or got a 503 (`deny`). Now such a take is run once more with the estimate raised, and is
// counted once. The relay below delays each direction on command, as the stall would.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { REDIS_URL, requireRedis, uniquePrefix } from './redis-helpers.js';

const skip = await requireRedis();

/** A TCP relay to the shared Redis whose two directions are delayed by `toRedisMs` and `toClientMs`, order kept. */
interface DelayingRelay {
  readonly url: string;
  toRedisMs: number;
  toClientMs: number;
  close(): Promise<void>;
}

async function delayingRelay(): Promise<DelayingRelay> {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  const delays = { toRedisMs: 0, toClientMs: 0 };
  /** Writes each chunk `delay()` ms after it arrived, never before the chunk ahead of it. */
  const pipe = (from: Socket, to: Socket, delay: () => number): void => {
    let lastAt = 0;
    from.on('data', (chunk: Buffer) => {
      const at = Math.max(performance.now() + delay(), lastAt);
      lastAt = at;
      setTimeout(() => to.destroyed || to.write(chunk), at - performance.now());
    });
  };
  const server: Server = createServer((client) => {
    const redis = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, redis]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        redis.destroy();
      });
    }
    pipe(client, redis, () => delays.toRedisMs);
    pipe(redis, client, () => delays.toClientMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get toRedisMs() {
      return delays.toRedisMs;
    },
    set toRedisMs(ms: number) {
      delays.toRedisMs = ms;
    },
    get toClientMs() {
      return delays.toClientMs;
    },
    set toClientMs(ms: number) {
      delays.toClientMs = ms;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a take whose clock estimate was behind', { skip }, () => {
  const TIMEOUT_MS = 2_000;
  const rule = { capacity: 10, refillPerSecond: 0.001 };
  let relay: DelayingRelay;
  let store: RedisKvStore;
  /** A new relay and store: a clock estimate with no sample yet. */
  const fresh = async (): Promise<void> => {
    await store?.close();
    await relay?.close();
    relay = await delayingRelay();
    store = createRedisKvStore({ url: relay.url, commandTimeoutMs: TIMEOUT_MS, keyPrefix: uniquePrefix('late-take') });
    await store.untilConnected();
  };
  after(async () => {
    await store?.close();
    await relay?.close();
  });

  test('is taken once more and counted once, not failed as a store error', async () => {
    await fresh();
    // The first reply (the estimate's only sample) reaches us 1.5 s after Redis ran it: the estimate is 1.5 s behind.
    relay.toClientMs = 1_500;
    const first = await store.take('client', rule);
    assert.equal(first.allowed, true);
    assert.equal(first.remaining, 9);
    // The next take's trip to Redis takes 800 ms, more than the 500 ms its deadline then had on Redis's clock; the
    // whole round trip stays well inside the 2 s command timeout.
    relay.toClientMs = 0;
    relay.toRedisMs = 800;
    const second = await store.take('client', rule);
    assert.equal(second.allowed, true, 'a take Redis answered in time is decided, not a store error');
    assert.equal(second.remaining, 8, 'one token spent for it: the refused run spent nothing');
    // The estimate has been raised: the next take with the same slow trip is decided at the first run.
    const third = await store.take('client', rule);
    assert.equal(third.remaining, 7);
  });

  test('a retry the gateway has given up on spends nothing when it reaches Redis', async () => {
    await fresh();
    relay.toClientMs = 1_500; // the estimate 1.5 s behind, as above
    assert.equal((await store.take('client', rule)).remaining, 9);
    // A trip of 1.6 s: the first run is late (spends nothing); 0.4 s are left for the retry, whose own trip of
    // 1.6 s passes the command timeout. The gateway gives up; the retry must then be late at Redis too.
    relay.toClientMs = 0;
    relay.toRedisMs = 1_600;
    await assert.rejects(store.take('client', rule), (err: Error) => err.name === 'KvUnavailableError');
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // the retry has reached Redis and been judged
    relay.toRedisMs = 0;
    const look = await store.peek('client', rule); // what one more take would leave
    assert.equal(look.remaining, 8, 'only the first take spent a token: none for the request answered as a store error');
  });
});
