// Unit tests of the readiness runner: every check named, failures and hangs reported as "down" within the timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pingCheck, runReadiness, upstreamsCheck } from './readiness.js';

test('ready when every check answers', async () => {
  const report = await runReadiness([pingCheck('user_store', async () => 'pong'), upstreamsCheck({ hasHealthy: () => true })]);
  assert.deepEqual(report, { ready: true, checks: { user_store: 'ok', upstreams: 'ok' } });
});

test('a failing, throwing or hanging check is down, and the others are still reported', async () => {
  const started = performance.now();
  const report = await runReadiness(
    [
      pingCheck('user_store', () => new Promise(() => undefined)),
      pingCheck('redis', async () => {
        throw new Error('ECONNREFUSED');
      }),
      {
        name: 'sync',
        check() {
          throw new Error('boom');
        },
      },
      upstreamsCheck({ hasHealthy: () => false }),
    ],
    150,
  );
  const elapsed = performance.now() - started;
  assert.deepEqual(report, { ready: false, checks: { user_store: 'down', redis: 'down', sync: 'down', upstreams: 'down' } });
  assert.ok(elapsed < 1_000, `took ${elapsed} ms`);
});

test('no checks means ready', async () => {
  assert.deepEqual(await runReadiness([]), { ready: true, checks: {} });
});
