// Errors nothing caught (src/process-faults.ts), from a plugin's stray timer or forgotten promise: a rejection is
// logged and the gateway goes on; an uncaught exception drains the requests in flight and exits 1, and a cluster's
// primary starts a fresh worker. No line carries the error's message (a secret here) or a stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { logsReadSoFar, spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { fixture } from '../plugins/helpers.js';

const lines = (gw: GatewayProcess, msg: string) => gw.logs.filter((l) => l.msg === msg);

function withStray(mode: 'throw' | 'reject', backendPort: number, extra: ConfigInput = {}): ConfigInput {
  return {
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([backendPort]) },
    plugins: [{ name: 'stray', module: fixture('stray.mjs'), config: { mode } }],
    middleware: { plugins: ['stray'] },
    ...extra,
  };
}

/** Nothing the plugin threw reached stdout or stderr but its class and where it came from. */
function assertNoSecret(gw: GatewayProcess): void {
  const everything = `${gw.logs.map((l) => JSON.stringify(l)).join('\n')}\n${gw.stderr()}`;
  assert.doesNotMatch(everything, /hunter2/);
  assert.doesNotMatch(everything, /\n\s+at /, 'no stack trace');
}

test('an unhandled rejection is logged once per window, with its class and origin, and the gateway goes on serving', async () => {
  const backend = await startBackend('one');
  const gw = await spawnGateway(withStray('reject', backend.port));
  try {
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${gw.url}/r${i}`)).status, 200);
    await waitFor(() => lines(gw, 'Unhandled Rejection').length > 0, 'the rejection line', 5_000);
    assert.equal(gw.child.exitCode, null, 'still running');
    assert.equal((await fetch(`${gw.url}/after`)).status, 200);
    // A second line, were the window not kept, would come with a later request and may still be on its way: every
    // line written so far is read before the count.
    await logsReadSoFar(gw);
    const logged = lines(gw, 'Unhandled Rejection');
    assert.equal(logged.length, 1, 'five rejections within the window: one line');
    assert.equal(logged[0]!.error, 'Error');
    assert.match(String(logged[0]!.origin), /test\/plugins\/fixtures\/stray\.mjs:\d+:\d+$/);
    assertNoSecret(gw);
  } finally {
    await gw.cleanup();
    await backend.stop();
  }
});

test('an uncaught exception stops the gateway: the request in flight is answered, the process exits 1', async () => {
  const backend = await startBackend('one');
  const gw = await spawnGateway(withStray('throw', backend.port));
  try {
    const inFlight = fetch(`${gw.url}/slow?ms=1000`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await fetch(`${gw.url}/crash`, { headers: { 'x-crash': '1' } })).status, 200);
    const answer = await inFlight;
    assert.equal(answer.status, 200, 'drained, not dropped');
    assert.equal(((await answer.json()) as { slow?: boolean }).slow, true);
    const { code } = await gw.exited;
    assert.equal(code, 1);
    const fatal = lines(gw, 'Uncaught Exception');
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]!.level, 60);
    assert.equal(fatal[0]!.error, 'Error');
    assert.match(String(fatal[0]!.origin), /test\/plugins\/fixtures\/stray\.mjs:\d+:\d+$/);
    assert.equal(lines(gw, 'Gateway Stopped').length, 1, 'stopped as on SIGTERM');
    assertNoSecret(gw);
  } finally {
    await gw.cleanup();
    await backend.stop();
  }
});

test('with workers, the worker that hit an uncaught exception exits 1 and the primary starts a fresh one', async () => {
  const backend = await startBackend('one');
  const gw = await spawnGateway(withStray('throw', backend.port, { server: { workers: 2 } }), { group: true });
  try {
    await waitFor(() => lines(gw, 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const before = workerPids(gw.child.pid!);
    assert.equal(before.length, 2);
    // One worker crashes; the other keeps the listening socket (with listen_port 0, the port goes when the last
    // worker holding it exits).
    assert.equal((await fetch(`${gw.url}/crash`, { headers: { 'x-crash': '1' } })).status, 200);
    await waitFor(() => gw.logs.some((l) => l.msg === 'Worker Exited' && l.code === 1), 'a worker to exit 1', 15_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${gw.logs.map((l) => JSON.stringify(l)).join('\n')} ${gw.stderr()}`);
    });
    await waitFor(() => lines(gw, 'Gateway Started').length >= 3, 'a replacement worker', 15_000);
    assert.ok(alive(gw.child.pid!), 'the primary runs on');
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${gw.url}/ok${i}`)).status, 200);
    assertNoSecret(gw);
  } finally {
    await endGroup(gw);
    await backend.stop();
  }
});
