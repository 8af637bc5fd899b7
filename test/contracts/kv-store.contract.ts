// The KvStore contract: one suite of behaviour every adapter (memory, Redis) must show, run by a thin file per engine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { KvValueError, type BucketRule, type KvStore } from '../../src/kv/kv-store.js';

/** What an engine file provides: a fresh store, plus the engine-specific view of a bucket's expiry. */
export interface KvStoreHarness {
  readonly store: KvStore;
  /** A second store sharing the first one's state (another gateway process), when the engine has shared state. */
  readonly twin?: KvStore;
  /** Milliseconds until the state of bucket `key` disappears, or undefined when it is gone (Redis PTTL; memory sweep). */
  bucketTtlMs(key: string): Promise<number | undefined>;
  /** Lets the engine drop expired state (memory: sweep; Redis: nothing, it expires keys itself). */
  settle(): Promise<void>;
  /** Removes everything this harness created. */
  cleanup(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Rules are chosen so a stalled, loaded machine cannot flip a result: "must reject" checks use slow refill
 * (a token per several seconds), "must pass after waiting" checks wait well past the refill time.
 */
const SLOW: BucketRule = { capacity: 5, refillPerSecond: 0.2 };
const FAST: BucketRule = { capacity: 2, refillPerSecond: 20 };
/** One token, refilled in 5 s. */
const SLOW_ONE: BucketRule = { capacity: 1, refillPerSecond: 0.2 };
/**
 * For expiry checks, which must read a state before it expires: a second and more of margin, since a loaded
 * machine running a Cluster or Sentinel topology on two cores can take a hundred milliseconds over a few commands.
 */
const STEADY: BucketRule = { capacity: 2, refillPerSecond: 2 };

/** Registers the contract suite for one engine. `open` runs once before the tests. */
export function kvStoreContract(engine: string, open: () => Promise<KvStoreHarness>, skip: string | false = false): void {
  describe(`KvStore contract: ${engine}`, { skip }, () => {
    let h: KvStoreHarness;
    const key = (): string => `c:${randomUUID()}`;

    before(async () => {
      h = await open();
    });
    after(async () => {
      await h.cleanup();
    });

    test('take: a new bucket starts full and hands out exactly capacity tokens, then refuses', async () => {
      const k = key();
      const results = [];
      for (let i = 0; i < 7; i++) results.push(await h.store.take(k, SLOW));
      assert.deepEqual(results.map((r) => r.allowed), [true, true, true, true, true, false, false]);
      assert.deepEqual(results.map((r) => r.remaining), [4, 3, 2, 1, 0, 0, 0]);
      assert.equal(results[0]!.retryAfterMs, 0);
      // Refused: one token comes after 5 s at 0.2/s (a little less, since time has passed).
      assert.ok(results[5]!.retryAfterMs > 4000 && results[5]!.retryAfterMs <= 5000, `retryAfterMs ${results[5]!.retryAfterMs}`);
      // Full again after 5 missing tokens at 0.2/s = 25 s.
      assert.ok(results[6]!.resetMs > 24_000 && results[6]!.resetMs <= 25_000, `resetMs ${results[6]!.resetMs}`);
    });

    test('take: buckets are independent per key and per rule key', async () => {
      const a = key();
      const b = key();
      for (let i = 0; i < 5; i++) await h.store.take(a, SLOW);
      assert.equal((await h.store.take(a, SLOW)).allowed, false);
      assert.equal((await h.store.take(b, SLOW)).allowed, true);
    });

    test('atomicity: 50 concurrent takes on one bucket pass exactly capacity times', async () => {
      const k = key();
      const rule: BucketRule = { capacity: 10, refillPerSecond: 0.01 };
      const stores = h.twin === undefined ? [h.store] : [h.store, h.twin];
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.take(k, rule)),
      );
      assert.equal(results.filter((r) => r.allowed).length, 10);
      // Each pass saw a distinct remaining count: no two callers spent the same token.
      const remaining = results.filter((r) => r.allowed).map((r) => r.remaining).sort((x, y) => x - y);
      assert.deepEqual(remaining, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    test('peek: what a take would decide, with nothing spent or kept, however many look at once', async () => {
      const k = key();
      assert.ok(h.store.peek !== undefined, 'the store can look without taking');
      const stores = h.twin === undefined ? [h.store] : [h.store, h.twin];
      // Fifty looks at once at a bucket of 1: each finds the token there, none takes it.
      const looks = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.peek!(k, SLOW_ONE)));
      assert.ok(looks.every((r) => r.allowed && r.remaining === 0 && r.retryAfterMs === 0), JSON.stringify(looks[0]));
      assert.equal(await h.bucketTtlMs(k), undefined, 'a look keeps no state');
      assert.equal((await h.store.take(k, SLOW_ONE)).allowed, true, 'the token is still there');
      const refused = await h.store.peek(k, SLOW_ONE);
      assert.equal(refused.allowed, false, 'the look sees the take');
      assert.ok(refused.retryAfterMs > 4000 && refused.retryAfterMs <= 5000, `retryAfterMs ${refused.retryAfterMs}`);
      const ttl = await h.bucketTtlMs(k);
      assert.ok(ttl !== undefined && ttl > 4000, `the take's state kept as the take left it (${ttl} ms)`);
      assert.equal((await h.store.take(k, SLOW_ONE)).allowed, false, 'and the bucket is empty as the take left it');
    });

    test('refill: after waiting past the refill time, tokens are available again', async () => {
      const k = key();
      assert.equal((await h.store.take(k, FAST)).allowed, true);
      assert.equal((await h.store.take(k, FAST)).allowed, true);
      await sleep(250); // 20/s → 5 tokens' worth, capped at 2
      assert.equal((await h.store.take(k, FAST)).allowed, true);
      assert.equal((await h.store.take(k, FAST)).allowed, true);
    });

    test('expiry: a bucket state lives until the bucket would be full again, then disappears', async () => {
      const k = key();
      await h.store.take(k, STEADY); // one token missing at 2/s → full again in 500 ms
      await h.store.take(k, STEADY); // two missing → 1 s
      const ttl = await h.bucketTtlMs(k);
      assert.ok(ttl !== undefined && ttl > 0 && ttl <= 1000, `ttl ${ttl}`);
      await sleep(1300);
      await h.settle();
      assert.equal(await h.bucketTtlMs(k), undefined);
    });

    test('expiry: a slow bucket keeps its state for the whole reset time', async () => {
      const k = key();
      const result = await h.store.take(k, SLOW);
      const ttl = await h.bucketTtlMs(k);
      assert.ok(ttl !== undefined && ttl > 4000 && ttl <= result.resetMs, `ttl ${ttl}, reset ${result.resetMs}`);
    });

    test('a rule change (reload): the rule that takes from a drained bucket decides its level and how long it is kept', async () => {
      // Drained under STEADY (full again in 1 s), then taken under a rule 10x slower: judged under the slower rule, and
      // kept until full under it (Redis: the script sets PEXPIRE from the rule of every call, longer as well as shorter).
      const k = key();
      const slower: BucketRule = { capacity: 2, refillPerSecond: 0.2 };
      await h.store.take(k, STEADY);
      await h.store.take(k, STEADY);
      const refused = await h.store.take(k, slower);
      assert.equal(refused.allowed, false);
      assert.ok(refused.resetMs > 8000, `resetMs ${refused.resetMs}`);
      const ttl = await h.bucketTtlMs(k);
      assert.ok(ttl !== undefined && ttl > 8000, `ttl ${ttl}`);
      await sleep(1300); // past the time STEADY would have refilled it
      await h.settle();
      assert.equal((await h.store.take(k, slower)).allowed, false, 'about 0.3 tokens under the slower rule');
    });

    test('revoke / isRevoked: revoked until the expiry, then forgotten', async () => {
      const jti = randomUUID();
      const other = randomUUID();
      assert.equal(await h.store.isRevoked(jti), false);
      await h.store.revoke(jti, Date.now() + 1200);
      assert.equal(await h.store.isRevoked(jti), true);
      assert.equal(await h.store.isRevoked(other), false);
      if (h.twin !== undefined) assert.equal(await h.twin.isRevoked(jti), true);
      await sleep(1500);
      await h.settle();
      assert.equal(await h.store.isRevoked(jti), false);
    });

    test('revoke: an already expired token is not stored', async () => {
      const jti = randomUUID();
      await h.store.revoke(jti, Date.now() - 1000);
      assert.equal(await h.store.isRevoked(jti), false);
    });

    test('revokeSubject: tokens issued at or before the time are refused, later ones pass; never lowered; expires', async () => {
      const subject = `user:${randomUUID()}`;
      const at = Date.now();
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 1000), false);
      await h.store.revokeSubject(subject, at, 1500);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 1000), true);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at), true);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 1000), false);
      assert.equal(await h.store.isRevoked(randomUUID(), `user:${randomUUID()}`, at - 1000), false);
      if (h.twin !== undefined) assert.equal(await h.twin.isRevoked(randomUUID(), subject, at - 1000), true);
      // A replayed, older revocation does not lower the stored time.
      await h.store.revokeSubject(subject, at - 5000, 1500);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 1000), true);
      // A revoked token id is still refused whatever its subject says.
      const jti = randomUUID();
      await h.store.revoke(jti, Date.now() + 10_000);
      assert.equal(await h.store.isRevoked(jti, `user:${randomUUID()}`, at), true);
      await sleep(1800);
      await h.settle();
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 1000), false);
    });

    test('revokeSubject with a generation: tokens below it are refused whatever their issue time, the rest pass', async () => {
      const subject = `user:${randomUUID()}`;
      const at = Date.now();
      await h.store.revokeSubject(subject, at, 10_000, 3);
      // Issued under an earlier generation by a host whose clock is ahead: a later time, refused all the same.
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 3000, 2), true);
      // Issued under the raised generation by a host whose clock is behind: an earlier time, accepted all the same.
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 3000, 3), false);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 3000, 4), false);
      if (h.twin !== undefined) assert.equal(await h.twin.isRevoked(randomUUID(), subject, at + 3000, 2), true);
      // A token without a generation (issued before the upgrade) is judged by time, as before.
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at), true);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 1), false);
      // Another subject's revocation says nothing of this one's tokens.
      assert.equal(await h.store.isRevoked(randomUUID(), `user:${randomUUID()}`, at - 3000, 0), false);
    });

    test('revokeSubject, same millisecond: the token\'s generation decides, not the tie of times', async () => {
      // A login and a log-out everywhere in one millisecond: the token's time equals the revocation's. The login that
      // committed before the log-out carries the old generation (refused), the one after it the raised one (accepted).
      const subject = `user:${randomUUID()}`;
      const at = Date.now();
      await h.store.revokeSubject(subject, at, 10_000, 1);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at, 0), true, 'issued before, in the same millisecond');
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at, 1), false, 'issued after, in the same millisecond');
      // Without a generation the tie is refused, as it always was.
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at), true);
    });

    test('revokeSubject: a replayed generation or time never lowers the stored ones', async () => {
      const subject = `user:${randomUUID()}`;
      const at = Date.now();
      await h.store.revokeSubject(subject, at, 10_000, 5);
      // The change log replays an older change (a lower generation, an earlier or a skewed later time).
      await h.store.revokeSubject(subject, at - 5000, 10_000, 2);
      await h.store.revokeSubject(subject, at + 2000, 10_000, 4);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 9000, 4), true, 'generation 5 still stands');
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at - 9000, 5), false, 'generation 5 still passes');
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 2000), true, 'the later time stands for unclaimed tokens');
    });

    test('revokeSubject: a revocation without a generation written after one with it refuses by time too', async () => {
      // A gateway or CLI of the previous version (a rolling upgrade) writes the time only: a token with a generation
      // is then compared by time as well, so that revocation refuses what it always did.
      const subject = `user:${randomUUID()}`;
      const at = Date.now();
      await h.store.revokeSubject(subject, at, 10_000, 1);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 500, 1), false);
      await h.store.revokeSubject(subject, at + 1000, 10_000);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 500, 1), true, 'issued before the later revocation');
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 1500, 1), false, 'issued after it');
      // The next revocation with a generation covers the time again: generations alone decide once more.
      await h.store.revokeSubject(subject, at + 1000, 10_000, 2);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 500, 2), false);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, at + 1500, 1), true);
    });

    test('revokeSubject with a generation expires with its ttl', async () => {
      const subject = `user:${randomUUID()}`;
      await h.store.revokeSubject(subject, Date.now(), 1200, 7);
      assert.equal(await h.store.isRevoked(randomUUID(), subject, Date.now(), 6), true);
      await sleep(1600);
      await h.settle();
      assert.equal(await h.store.isRevoked(randomUUID(), subject, Date.now(), 6), false);
    });

    test('values: set then get, replaced by the next set; absent keys are undefined', async () => {
      const k = key();
      assert.equal(await h.store.getValue(k), undefined);
      await h.store.setValue(k, 'one');
      assert.equal(await h.store.getValue(k), 'one');
      await h.store.setValue(k, 'two');
      assert.equal(await (h.twin ?? h.store).getValue(k), 'two');
    });

    test('values: a value with a ttl disappears after it, one without stays', async () => {
      const brief = key();
      const lasting = key();
      await h.store.setValue(brief, 'x', 1000);
      await h.store.setValue(lasting, 'y');
      assert.equal(await h.store.getValue(brief), 'x');
      await sleep(1300);
      await h.settle();
      assert.equal(await h.store.getValue(brief), undefined);
      assert.equal(await h.store.getValue(lasting), 'y');
    });

    test('values: the value keyspace never meets buckets or revocations', async () => {
      const k = key();
      await h.store.setValue(k, 'plain');
      for (let i = 0; i < 5; i++) await h.store.take(k, SLOW);
      await h.store.revoke(k, Date.now() + 60_000);
      assert.equal(await h.store.getValue(k), 'plain');
      assert.equal((await h.store.take(key(), SLOW)).allowed, true);
    });

    test('increment: counts from 1, atomically under 50 concurrent callers', async () => {
      const k = key();
      assert.equal(await h.store.increment(k, 60_000), 1);
      const stores = h.twin === undefined ? [h.store] : [h.store, h.twin];
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.increment(k, 60_000)));
      assert.deepEqual([...results].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 2));
      assert.equal(await h.store.getValue(k), '51');
    });

    test('increment: the window starts at the first increment and later ones keep it', async () => {
      const k = key();
      await h.store.increment(k, 1200);
      await sleep(400);
      assert.equal(await h.store.increment(k, 1200), 2); // does not push the expiry back
      await sleep(1000); // 1.4 s after the first: gone, though only 1 s after the second
      await h.settle();
      assert.equal(await h.store.getValue(k), undefined);
      assert.equal(await h.store.increment(k, 1200), 1);
    });

    test('increment: a value that is not an integer is refused with KvValueError, and kept', async () => {
      const k = key();
      await h.store.setValue(k, 'abc');
      await assert.rejects(Promise.resolve().then(() => h.store.increment(k, 1000)), KvValueError);
      assert.equal(await h.store.getValue(k), 'abc');
      await h.store.setValue(k, '41');
      assert.equal(await h.store.increment(k, 1000), 42);
    });

    test('increment: both stores count only plain decimal integers exact as numbers; the rest is KvValueError, not an outage', async () => {
      // Leading zeros, "-0", a plus sign, spaces, exponents and integers past 2^53 - 1 (where counting stops being
      // exact) are refused alike: Redis's own INCR took some of them and failed others as errors that read as outages.
      for (const refused of ['007', '-0', '+1', ' 1', '1e3', '1.0', '9007199254740991', '9223372036854775807', '99999999999999999999', '-9007199254740991']) {
        const k = key();
        await h.store.setValue(k, refused);
        await assert.rejects(Promise.resolve().then(() => h.store.increment(k, 1000)), KvValueError, JSON.stringify(refused));
        assert.equal(await h.store.getValue(k), refused);
      }
      for (const [from, to] of [['0', 1], ['-1', 0], ['-12', -11], ['9007199254740989', 9007199254740990]] as const) {
        const k = key();
        await h.store.setValue(k, from);
        assert.equal(await h.store.increment(k, 1000), to, from);
      }
    });

    test('ping answers', async () => {
      await h.store.ping();
    });
  });
}
