// README: "a refused reload ... changes no worker, restarted or not". Every reload reads .env into the primary's
// environment before the config is checked, and a worker was forked with the primary's environment as it was then:
// after a reload refused with a changed .env, a crashed worker's replacement ran the refused .env's values. With
// LOG_LEVEL=warn there, the replacement logged neither its "Gateway Started" nor its requests' lines, beside a
// sibling logging both. A worker is now forked with the environment of the accepted config.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig, type ConfigInput } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { endGroup, workerPids } from '../helpers/workers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('api');
});
after(async () => {
  await backend?.stop();
});

/** A GET on a fresh connection (the primary hands connections to the workers in turn). */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
}

test('a worker restarted after a reload refused with a changed .env runs the accepted environment', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-env-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  writeFileSync(join(cwd, '.env'), 'LOG_LEVEL=info\n');
  const config = (extra: ConfigInput = {}): ConfigInput => ({
    server: { workers: 2 },
    load_balancing: { upstreams: upstreams([backend.port]) },
    ...extra,
  });
  const gw = await spawnGateway(config(), { cwd, group: true, timeoutMs: 30_000 });
  t.after(() => endGroup(gw));
  const started = () => gw.logs.filter((l) => l.msg === 'Gateway Started').length;
  await waitFor(() => started() === 2 && workerPids(gw.child.pid!).length === 2, 'both workers', 30_000);

  // Refused: admin settings need a restart. Its .env, read by the reload, asks for warn.
  writeFileSync(join(cwd, '.env'), 'LOG_LEVEL=warn\n');
  copyFileSync(writeConfig(config({ admin: { listen_host: '127.0.0.1', listen_port: 0, token: 'a-token-that-needs-a-restart' } })), gw.configFile);
  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected'), 'the reload refused');

  const [, second] = workerPids(gw.child.pid!);
  process.kill(second!, 'SIGKILL');
  // The replacement logs at the accepted level (info): its start-up line comes.
  await waitFor(() => started() === 3, 'the replacement worker\'s "Gateway Started"', 20_000);
  const before = gw.logs.filter((l) => l.msg === 'Request Completed').length;
  for (let i = 0; i < 6; i++) assert.equal(await get(`${gw.url}/r${i}`), 200);
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Request Completed').length - before === 6, 'every request logged, by both workers', 5_000);
});
