// SIGUSR1 (a log rotation) while a multi-worker gateway restarts a crashed worker. The primary passes SIGUSR1 on to its
// workers; before the fix it did so to a worker still booting, before its listener was in place, and Node's default
// action for SIGUSR1 opened the inspector in it (a debugger on 127.0.0.1:9229 that any local user could attach to).
// Sent earlier still, before Node set its own handler up, it ended the worker (the kernel's default action). Now only
// workers whose listeners are in place get it; one still booting opens the file by name afterwards anyway.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { workerPids } from '../helpers/workers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

test('SIGUSR1 to the primary while a replacement worker boots never opens the inspector in it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-usr1-'));
  const gw = await spawnGateway(
    {
      server: { workers: 2 },
      logging: { access_log_file: join(dir, 'access.log') },
      load_balancing: { upstreams: upstreams([backend.port]) },
    },
    { timeoutMs: 30_000 },
  );
  t.after(async () => {
    await gw.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const primary = gw.child.pid!;
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers', 30_000);
  const before = workerPids(primary);
  process.kill(before[0]!, 'SIGKILL');
  // The replacement is forked 100 ms after the crash; signalled as soon as it exists, it is still loading its code.
  await waitFor(() => workerPids(primary).some((pid) => !before.includes(pid)), 'the replacement worker', 15_000, 2);
  gw.signal('SIGUSR1');
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 3, 'the replacement to serve', 30_000);
  assert.doesNotMatch(gw.stderr(), /inspector|Debugger/i, 'no worker opened the inspector');
  const exits = gw.logs.filter((l) => l.msg === 'Worker Exited').map((l) => l.signal);
  assert.deepEqual(exits, ['SIGKILL'], 'the crash the test made, and no other (an early SIGUSR1 ends a process)');
});
