// A multi-worker gateway gave up on its workers after 5 replacements in a row failed at start-up, whatever else was
// going on: one worker killed (an OOM kill, a plugin's uncaught exception) while its replacement could not start
// (PostgreSQL refusing new connections, its admin port taken meanwhile) stopped the healthy workers too, and the
// whole gateway exited 1 some 3 s later. The give-up is for a gateway that cannot start; while a worker serves,
// replacements are restarted with backoff (up to 10 s apart) for as long as it takes, as nginx's master does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** The worker forked with the admin listener (its environment says so). */
function adminWorker(primary: number): number | undefined {
  return workerPids(primary).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('PORTCULLIS_ADMIN_WORKER=1');
    } catch {
      return false;
    }
  });
}

/** Listens on `port` as soon as it is free (the primary closes its listener once the admin worker is gone). */
async function takePort(port: number, withinMs: number): Promise<Server> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) return server;
    if (performance.now() > deadline) throw new Error(`port ${port} never came free`);
    await sleep(5);
  }
}

test('while a worker serves, a replacement that cannot start (its admin port taken) is retried, not given up on', async () => {
  const backend = await startBackend('one');
  const adminPort = await freePort();
  const gw = await spawnGateway(
    {
      server: { workers: 2 },
      admin: { listen_host: '127.0.0.1', listen_port: adminPort },
      load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] },
    },
    { group: true },
  );
  let squatter: Server | undefined;
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 15_000);
    const admin = adminWorker(gw.child.pid!);
    assert.ok(admin !== undefined, 'the admin worker found');
    process.kill(admin, 'SIGKILL');
    squatter = await takePort(adminPort, 3_000);
    // Replacements fail on the taken port after 100, 200, 400, 800 and 1,600 ms: the 5th used to end the gateway.
    const gaveUp = (): boolean => gw.logs.some((l) => String(l.msg).startsWith('Workers Failing At Start-up'));
    const failing = (): number => gw.logs.filter((l) => String(l.msg).startsWith('Worker Failing At Start-up')).length;
    await waitFor(() => failing() >= 1 || gaveUp(), 'five replacements failed', 15_000);
    assert.ok(!gaveUp(), 'not given up on');
    // Said at error level from the 5th failure on, as the give-up was: the gateway runs a worker short.
    assert.equal(gw.logs.find((l) => String(l.msg).startsWith('Worker Failing At Start-up'))?.level, 50);
    assert.ok(alive(gw.child.pid!), 'the primary runs on');
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${gw.url}/served${i}`)).status, 200, 'the other worker serves');
    // The port comes free: the next replacement (at most 10 s later) takes the admin listener again.
    await new Promise<void>((resolve) => squatter!.close(() => resolve()));
    squatter = undefined;
    await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`).catch(() => undefined))?.status === 200, 'the admin port back', 15_000);
  } finally {
    squatter?.close();
    await endGroup(gw);
    await backend.stop();
  }
});
