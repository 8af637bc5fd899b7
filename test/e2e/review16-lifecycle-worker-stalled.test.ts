// What was wrong: with `server.workers` > 1, a worker whose event loop stopped after it had started (a plugin's endless
// loop on one request) stayed a worker for good. node:cluster's primary kept handing it every other new connection,
// and each hung until the client gave up: half the gateway's clients got nothing, with no line in the log. The
// primary's start deadline and reload rounds only caught a worker stuck while it started or reloaded.
// What is right now: the primary asks each serving worker every second to answer from its event loop; one silent for
// 10 s is logged `Worker Stalled` at error level, killed (SIGKILL) and restarted, and serves again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { waitFor } from '../helpers/wait.js';
import { rawRequest } from '../helpers/raw.js';
import { freePort } from '../helpers/ports.js';
import { rewriteConfig } from '../helpers/gateway.js';

/** A plugin module's `hang()`: blocks its thread for good (Atomics.wait on a word nobody changes), burning no CPU. */
const HANG = `const hang = () => { for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); };`;

test('a serving worker stuck in a loop is killed within about 10 s and replaced; every worker serves again', { timeout: 60_000 }, async () => {
  const backend = await startBackend('one');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-stall-'));
  const plugin = join(dir, 'spin.mjs');
  // Hangs for good on /spin: the worker's event loop never runs again. Blocked in Atomics.wait rather than spinning in
  // for (;;): to the primary the two are the same silent worker (no JavaScript runs, SIGKILL ends it), and the block
  // does not burn a core for the 10 s the watchdog waits.
  writeFileSync(plugin, `${HANG}\nexport default { name: 'spin', create() { return { onRequest(ctx) { if (ctx.request.path === '/spin') hang(); } }; } };`);
  const gw = await spawnGateway(
    {
      server: { workers: 2 },
      admin: { enabled: false },
      load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] },
      plugins: [{ name: 'spin', module: plugin }],
      middleware: { plugins: ['spin'] },
    },
    { group: true },
  );
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const before = workerPids(gw.child.pid!);
    assert.equal(before.length, 2);
    const port = Number(new URL(gw.url).port);
    // One connection is handed to one worker; that worker spins. The request never gets an answer from it.
    const stuck = rawRequest(port, 'GET /spin HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n').catch(() => undefined);
    await waitFor(() => gw.logs.some((l) => l.msg === 'Worker Stalled'), 'the stalled worker found', 20_000);
    const line = gw.logs.find((l) => l.msg === 'Worker Stalled')!;
    assert.equal(line.level, 50, 'an error');
    assert.ok(Number(line.silent_ms) >= 10_000, `silent for ${String(line.silent_ms)} ms`);
    const killed = Number(line.pid);
    assert.ok(before.includes(killed));
    await waitFor(() => !alive(killed), 'the stalled worker gone', 5_000);
    await stuck;
    // Its replacement starts and serves beside the other: fresh connections go to both in turn, and all are answered.
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 3, 'the replacement started', 15_000);
    for (let i = 0; i < 6; i++) {
      const res = await rawRequest(port, `GET /ok${i} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200);
    }
    assert.ok(alive(gw.child.pid!), 'the primary runs on');
    assert.equal(workerPids(gw.child.pid!).length, 2);
  } finally {
    await endGroup(gw);
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// From the fix's review: a reload whose plugin spins in create() had both workers killed by the watchdog at 10 s,
// before the round's own apply deadline; the round took them for gone, accepted the config none had prepared, and
// every replacement then hung on it until the primary gave up. A worker the primary awaits an answer from is the
// round's to judge: the reload is refused, the workers replaced, and the old config serves on.
test('a reload that hangs the workers is refused by its round, not taken for accepted after watchdog kills', { timeout: 120_000 }, async () => {
  const backend = await startBackend('one');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-stall-reload-'));
  const plugin = join(dir, 'spin.mjs');
  writeFileSync(plugin, `${HANG}\nexport default { name: 'spin', create(c) { if (c.spin) hang(); return { onResponse(ctx) { ctx.responseHeaders.set('x-spin', String(c.spin)); } }; } };`);
  const adminPort = await freePort();
  const proxyPort = await freePort();
  const config = (spin: boolean) => ({
    server: { workers: 2, listen_host: '127.0.0.1', listen_port: proxyPort },
    admin: { listen_host: '127.0.0.1', listen_port: adminPort },
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] },
    plugins: [{ name: 'spin', module: plugin, config: { spin } }],
    middleware: { plugins: ['spin'], plugin_load_timeout: '1s' },
  });
  const gw = await spawnGateway(config(false), { group: true });
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    rewriteConfig(gw, config(true));
    // Not awaited: its answer depends on which worker took the request and when it was replaced (bounded all the same).
    void fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
    await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected' && l.workers_discarded !== undefined) || gw.logs.some((l) => String(l.msg).startsWith('Workers Failing')), 'the round decided', 60_000);
    assert.ok(!gw.logs.some((l) => l.msg === 'Worker Stalled'), 'no watchdog kill mid-round');
    assert.ok(!gw.logs.some((l) => String(l.msg).startsWith('Workers Failing')), 'not given up on');
    // The replacements start on the config the primary still holds: the old one.
    // Every worker was replaced: the proxy port is the fixed one (with port 0 the replacements would bind a new one).
    await waitFor(async () => (await fetch(`http://127.0.0.1:${proxyPort}/after`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.headers.get('x-spin') === 'false', 'the old config serves', 20_000);
    assert.ok(alive(gw.child.pid!));
  } finally {
    await endGroup(gw);
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
