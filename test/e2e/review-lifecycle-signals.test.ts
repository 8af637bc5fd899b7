// Stop signals that come twice. A worker gets SIGTERM twice whenever the whole process group is signalled (systemd's
// default KillMode=control-group, `kill -TERM -<pgid>`): once from the sender, once relayed by its primary. Before
// the fix the second one ended the worker at once (Node's default action: no listener was left after the first),
// dropping the requests it was draining. A single process sent a second stop signal while draining now stops as a
// primary does: "Stop Forced", its log flushed, exit 1 (before: killed by the signal, buffered lines lost).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { endGroup } from '../helpers/workers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

/** The status of a GET on a fresh connection (a cluster's connections go to each worker in turn), or the error's code. */
function statusOf(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });
}

const config = (workers: number) => ({
  server: { workers, timeouts: { shutdown_drain: '10s' } },
  load_balancing: { upstreams: upstreams([backend.port]) },
});

test('SIGTERM to the process group of two workers: every worker drains its requests, exit 0', async (t) => {
  const gw = await spawnGateway(config(2), { group: true, timeoutMs: 30_000 });
  t.after(() => endGroup(gw));
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 'both workers', 30_000);
  // Four connections: the primary hands them to the two workers in turn.
  const answers = Promise.all(Array.from({ length: 4 }, () => statusOf(`${gw.url}/slow?ms=1500`)));
  await waitFor(() => backend.active === 4, 'four requests upstream');
  gw.signal('SIGTERM'); // to the group: the primary and both workers
  assert.deepEqual(await answers, [200, 200, 200, 200], 'every request in flight is drained');
  assert.deepEqual(await gw.exited, { code: 0, signal: null });
  assert.equal(gw.logs.filter((l) => l.msg === 'Gateway Stopped').length, 2, 'both workers stopped by draining');
});

test('a single process sent a second SIGTERM while it drains: "Stop Forced", exit 1, its log flushed', async (t) => {
  const gw = await spawnGateway(config(1));
  t.after(() => gw.cleanup());
  const answer = statusOf(`${gw.url}/slow?ms=5000`);
  await waitFor(() => backend.active === 1, 'the request upstream');
  gw.signal('SIGTERM');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 'the stop');
  gw.signal('SIGTERM');
  assert.deepEqual(await gw.exited, { code: 1, signal: null });
  assert.ok(gw.logs.some((l) => l.msg === 'Stop Forced'), 'the forced stop is logged');
  assert.notEqual(await answer, 200, 'the request was cut, not drained');
});
