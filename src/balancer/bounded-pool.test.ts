// The bounded upstream queue: order, limits, timeouts, and cancellation before undici ever sees a request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import { BoundedPool } from './bounded-pool.js';

/** A stand-in for the undici pool: records what it was given, and lets the test drive the callbacks. */
class FakePool {
  readonly started: Array<{ path: string; handler: Dispatcher.DispatchHandler }> = [];
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.started.push({ path: options.path, handler });
    return true;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

/** A real-enough controller for the fake pool's side. */
function controller(): Dispatcher.DispatchController & { abortedWith: Error | undefined } {
  return {
    abortedWith: undefined,
    aborted: false,
    paused: false,
    reason: null,
    abort(reason: Error) {
      this.abortedWith = reason;
    },
    pause() {},
    resume() {},
  };
}

/** The caller's handler: remembers its controller and how the request ended. */
function recorder() {
  const seen: { controller?: Dispatcher.DispatchController; error?: Error; ended: boolean } = { ended: false };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: (c) => (seen.controller = c),
    onResponseEnd: () => (seen.ended = true),
    onResponseError: (_c, err) => (seen.error = err),
  };
  return { handler, seen };
}

const opts = (path: string): Dispatcher.DispatchOptions => ({ path, method: 'GET' });

function setup(connections: number, queueLimit: number, queueTimeoutMs = 10_000) {
  const fake = new FakePool();
  const pool = new BoundedPool(fake as unknown as Dispatcher, { connections, queueLimit, queueTimeoutMs });
  return { fake, pool };
}

test('runs up to `connections` at once and starts waiting requests in order as slots free up', () => {
  const { fake, pool } = setup(2, 10);
  for (const path of ['/a', '/b', '/c', '/d']) pool.dispatch(opts(path), recorder().handler);
  assert.deepEqual(fake.started.map((s) => s.path), ['/a', '/b']);
  assert.equal(pool.queued, 2);
  fake.started[0]!.handler.onResponseEnd!(controller(), {});
  assert.deepEqual(fake.started.map((s) => s.path), ['/a', '/b', '/c']);
  fake.started[1]!.handler.onResponseError!(controller(), new Error('reset'));
  assert.deepEqual(fake.started.map((s) => s.path), ['/a', '/b', '/c', '/d']);
  assert.equal(pool.running, 2);
  assert.equal(pool.queued, 0);
});

test('a full queue answers UPSTREAM_BUSY at once', () => {
  const { fake, pool } = setup(1, 1);
  pool.dispatch(opts('/a'), recorder().handler);
  pool.dispatch(opts('/b'), recorder().handler);
  const third = recorder();
  pool.dispatch(opts('/c'), third.handler);
  assert.ok(third.seen.error instanceof GatewayError);
  assert.equal((third.seen.error as GatewayError).code, 'UPSTREAM_BUSY');
  assert.equal((third.seen.error as GatewayError).headers?.['retry-after'], '1');
  assert.equal(fake.started.length, 1);
});

test('a request waits at most queueTimeoutMs, then UPSTREAM_BUSY; it never reaches the pool', async () => {
  const { fake, pool } = setup(1, 5, 50);
  pool.dispatch(opts('/a'), recorder().handler);
  const waiting = recorder();
  pool.dispatch(opts('/b'), waiting.handler);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal((waiting.seen.error as GatewayError | undefined)?.code, 'UPSTREAM_BUSY');
  assert.equal(pool.queued, 0);
  fake.started[0]!.handler.onResponseEnd!(controller(), {});
  assert.equal(fake.started.length, 1, 'the timed-out request was not started later');
});

test('an abort while waiting removes the request: the handler hears the reason, the pool never sees it', () => {
  const { fake, pool } = setup(1, 5);
  pool.dispatch(opts('/a'), recorder().handler);
  const leaver = recorder();
  pool.dispatch(opts('/b'), leaver.handler);
  const reason = new GatewayError('CLIENT_CLOSED');
  leaver.seen.controller!.abort(reason);
  assert.equal(leaver.seen.error, reason);
  assert.equal(pool.queued, 0);
  fake.started[0]!.handler.onResponseEnd!(controller(), {});
  assert.equal(fake.started.length, 1);
  assert.equal(pool.running, 0);
});

test('an abort after dispatch but before the pool hands over its controller refuses the request the moment it does', () => {
  const { fake, pool } = setup(1, 5);
  const caller = recorder();
  pool.dispatch(opts('/a'), caller.handler);
  const reason = new GatewayError('CLIENT_CLOSED');
  caller.seen.controller!.abort(reason);
  const real = controller();
  // Thrown, not aborted: undici fails the request with it and keeps the new connection for the next request.
  assert.throws(() => fake.started[0]!.handler.onRequestStart!(real, {}), (err) => err === reason);
  assert.equal(real.abortedWith, undefined, 'the connection is not cut');
  fake.started[0]!.handler.onResponseError!(real, reason); // what undici does with the thrown reason
  assert.equal(caller.seen.error, reason);
  assert.equal(pool.running, 0);
});

test('close refuses new requests', async () => {
  const { pool } = setup(1, 5);
  await pool.close();
  const late = recorder();
  pool.dispatch(opts('/late'), late.handler);
  assert.equal((late.seen.error as GatewayError | undefined)?.code, 'PROXY_ERROR');
});

test('two pools of one upstream share its slots and queue: a waiting request starts on its own pool when the other frees one', async () => {
  const { fake: h2, pool: main } = setup(1, 1);
  const h1 = new FakePool();
  const upgrades = new BoundedPool(h1 as unknown as Dispatcher, { connections: 1, queueLimit: 1, queueTimeoutMs: 10_000 }, main);
  main.dispatch(opts('/grpc'), recorder().handler);
  upgrades.dispatch(opts('/ws'), recorder().handler);
  assert.equal(h1.started.length, 0, 'the upstream has one slot, taken');
  assert.equal(main.queued, 1);
  const refused = recorder();
  main.dispatch(opts('/more'), refused.handler);
  assert.equal((refused.seen.error as GatewayError | undefined)?.code, 'UPSTREAM_BUSY', 'one queue_limit for the upstream');
  // The gRPC call ends: the WebSocket starts, on the HTTP/1.1 pool.
  let mainClosed = false;
  const closing = main.close().then(() => (mainClosed = true));
  h2.started[0]!.handler.onResponseEnd!(controller(), {});
  assert.deepEqual(h1.started.map((s) => s.path), ['/ws']);
  assert.equal(h2.started.length, 1);
  assert.equal(upgrades.running, 1);
  // The main pool's close does not wait for the other pool's request.
  await closing;
  assert.ok(mainClosed);
});
