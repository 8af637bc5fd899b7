import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concurrencyLimit, ReadAbandonedError, sharedRender, sharedRenderByKey } from './shared-render.js';

/** A render whose runs the test ends one by one; `runs` counts the runs begun. */
function gatedRender() {
  const gates: (() => void)[] = [];
  let runs = 0;
  return {
    render: async (): Promise<number> => {
      const n = ++runs;
      await new Promise<void>((resolve) => gates.push(resolve));
      return n;
    },
    get runs() {
      return runs;
    },
    async open(): Promise<void> {
      while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
      gates.shift()!();
    },
  };
}

test('after-arrival: requests of one turn share a run; one arriving while it runs gets the next, shared too', async () => {
  const r = gatedRender();
  const get = sharedRender(r.render, 'after-arrival');
  const first = [get(), get(), get()];
  await r.open();
  assert.deepEqual(await Promise.all(first), [1, 1, 1]);
  const a = get();
  await new Promise((resolve) => setImmediate(resolve)); // run 2 under way
  const late = [get(), get()];
  await r.open();
  assert.equal(await a, 2);
  await r.open();
  assert.deepEqual(await Promise.all(late), [3, 3]);
  assert.equal(r.runs, 3);
});

test('join-running: a request arriving while a run is under way shares it', async () => {
  const r = gatedRender();
  const get = sharedRender(r.render, 'join-running');
  const a = get();
  await new Promise((resolve) => setImmediate(resolve));
  const b = get();
  await r.open();
  assert.deepEqual([await a, await b], [1, 1]);
  assert.equal(r.runs, 1);
});

test('a rejection goes to the requests of its run; the next request renders anew', async () => {
  let calls = 0;
  const get = sharedRender(async () => {
    if (++calls === 1) throw new Error('down');
    return calls;
  }, 'after-arrival');
  const results = await Promise.allSettled([get(), get()]);
  assert.deepEqual(results.map((x) => x.status), ['rejected', 'rejected']);
  assert.equal(await get(), 2);
});

test('by key: different keys run on their own, a key is forgotten once no request waits on it', async () => {
  const seen: string[] = [];
  const get = sharedRenderByKey(async (key) => {
    seen.push(key);
    return key.toUpperCase();
  }, 'after-arrival');
  assert.deepEqual(await Promise.all([get('a'), get('b'), get('a')]), ['A', 'B', 'A']);
  assert.deepEqual(seen.sort(), ['a', 'b']);
  assert.equal(await get('a'), 'A');
  assert.deepEqual(seen, ['a', 'b', 'a']);
});

test('concurrencyLimit: at most `limit` run at once, the rest in arrival order, a failure frees its slot', async () => {
  const limited = concurrencyLimit(2);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const work = (n: number) => async (): Promise<number> => {
    most = Math.max(most, ++running);
    await new Promise((resolve) => setImmediate(resolve));
    running--;
    order.push(n);
    if (n === 1) throw new Error('down');
    return n;
  };
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => limited(work(n))));
  assert.equal(most, 2);
  assert.deepEqual(order, [1, 2, 3, 4, 5]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
});

test('concurrencyLimit: a call no longer wanted at its turn is not run, and its turn passes on', async () => {
  const limited = concurrencyLimit(1);
  let release!: () => void;
  const started: string[] = [];
  const first = limited(async () => {
    started.push('first');
    await new Promise<void>((resolve) => (release = resolve));
  });
  let wanted = true;
  const gone = limited(async () => void started.push('gone'), () => wanted);
  const next = limited(async () => void started.push('next'), () => true);
  wanted = false; // its client left while it waited
  release();
  await first;
  await assert.rejects(gone, ReadAbandonedError);
  await next;
  assert.deepEqual(started, ['first', 'next']);
});
