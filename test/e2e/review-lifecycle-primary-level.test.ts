// logging.level is applied by a reload (README's reload table) in a multi-worker gateway's primary too, not only in
// its workers: before the fix the primary kept the level it started with, so after a reload to `error` it still
// wrote its warn and info lines (a crashed worker's "Worker Exited", "Reload Queued").
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor, sleep } from '../helpers/wait.js';
import { alive, workerPids } from '../helpers/workers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

test("a reload's logging.level reaches the primary's own lines", async (t) => {
  const adminPort = await freePort();
  const config = (level: string) => ({
    server: { workers: 2 },
    admin: { listen_port: adminPort },
    logging: { level },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  const gw = await spawnGateway(config('info'), { timeoutMs: 30_000 });
  t.after(() => gw.cleanup());
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers', 30_000);

  copyFileSync(writeConfig(config('error')), gw.configFile);
  const res = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
  assert.deepEqual(await res.json(), { status: 'reloaded' }, 'the reload is accepted');
  const linesBefore = gw.logs.length;

  // A crash the primary would report at warn ("Worker Exited"): below `error`, so not a line any more.
  const [victim] = workerPids(gw.child.pid!);
  process.kill(victim!, 'SIGKILL');
  await waitFor(() => !alive(victim!) && workerPids(gw.child.pid!).length === 2, 'the replacement worker', 15_000);
  await sleep(300); // the primary's line, had it written one, has been read by now
  assert.deepEqual(gw.logs.slice(linesBefore).filter((l) => (l.level as number) < 50), [], 'no line below error after the reload');
});
