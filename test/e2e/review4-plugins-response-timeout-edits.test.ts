// An onResponse hook abandoned at middleware.plugin_timeout is skipped (README, "Failures"): the response goes out
// as the hooks before it left it. What was wrong: the edits it made before it started waiting stayed, so a hook that
// set `Cache-Control: public` first and meant to take it back after an asynchronous check (a store call that hung)
// sent a cacheable response it never approved, and a header it removed was lost. What is right now: the edits of an
// abandoned onResponse are undone; the hooks after it run on the headers as they were before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';

/** Edits, then waits for ever; the next plugin reports what it saw. */
const HANGS = `
export default {
  name: 'hangs',
  create() {
    return {
      async onResponse(ctx) {
        ctx.responseHeaders.set('cache-control', 'public, max-age=86400');
        ctx.responseHeaders.set('x-backend', 'replaced');
        ctx.responseHeaders.delete('x-echo-url');
        ctx.responseHeaders.set('x-partial', '1');
        await new Promise(() => {});
      },
    };
  },
};
`;
const NEXT = `
export default {
  name: 'next',
  create() {
    return {
      onResponse(ctx) {
        ctx.responseHeaders.set('x-next-saw', String(ctx.responseHeaders.get('x-partial') ?? 'none'));
      },
    };
  },
};
`;

describe('an onResponse abandoned at plugin_timeout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-response-timeout-'));
  let backend: TestBackend;
  let gw: InProcessGateway;

  before(async () => {
    writeFileSync(join(dir, 'hangs.mjs'), HANGS);
    writeFileSync(join(dir, 'next.mjs'), NEXT);
    backend = await startBackend('b1');
    gw = await startInProcess({
      load_balancing: { upstreams: upstreams([backend.port]) },
      plugins: [
        { name: 'hangs', module: join(dir, 'hangs.mjs') },
        { name: 'next', module: join(dir, 'next.mjs') },
      ],
      middleware: { plugins: ['hangs', 'next'], plugin_timeout: '300ms' },
    });
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('leaves the response as it found it', async () => {
    const res = await fetch(`${gw.url}/thing`);
    await res.text();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), null);
    assert.equal(res.headers.get('x-partial'), null);
    assert.equal(res.headers.get('x-backend'), 'b1');
    assert.equal(res.headers.get('x-echo-url'), '/thing');
    assert.equal(res.headers.get('x-next-saw'), 'none');
    assert.ok(gw.logs.some((line) => line.msg === 'Plugin Timed Out' && line.plugin === 'hangs' && line.hook === 'onResponse'));
  });
});
