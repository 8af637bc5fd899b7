// Overlapping reloads (SIGHUP, POST /reload) of a child-process gateway end on the newest file: a reload asked for
// while one runs waits for it and reads the file then, and the requests made meanwhile share that one reload.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { parseConfigObject } from '../../src/config/load.js';
import { spawnGateway, startInProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { fixture } from '../plugins/helpers.js';

let backend: TestBackend;
let gw: GatewayProcess;

/** A config whose plugin tags every response with `tag`, its create() taking `delay` ms. */
function tagged(tag: number, delay = 0) {
  return {
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tag', module: fixture('slow-tag.mjs'), config: { tag, delay } }],
    middleware: { plugins: ['tag'] },
  };
}

function rewrite(tag: number, delay = 0): void {
  copyFileSync(writeConfig(tagged(tag, delay)), gw.configFile);
}

const count = (msg: string) => gw.logs.filter((l) => l.msg === msg).length;
const creating = (tag: number) => waitFor(() => gw.logs.some((l) => l.msg === 'Tag Creating' && l.tag === tag), `create() of tag ${tag}`);
const servedTag = async () => (await fetch(`${gw.url}/`)).headers.get('x-tag');

before(async () => {
  backend = await startBackend('echo');
  gw = await spawnGateway(tagged(1));
});
after(async () => {
  await gw?.cleanup();
  await backend?.stop();
});

test('SIGHUP during a slow reload: the second reload runs after it and the newer file is what serves', async () => {
  const reloaded = count('Config Reloaded');
  rewrite(2, 1500);
  gw.signal('SIGHUP');
  await creating(2);
  rewrite(3);
  gw.signal('SIGHUP');
  await waitFor(() => count('Config Reloaded') === reloaded + 2, 'two reloads', 10_000);
  assert.equal(await servedTag(), '3');
});

test('POST /reload and SIGHUP during a slow reload are coalesced into one reload that reads the newest file', async () => {
  const [reloaded, queued] = [count('Config Reloaded'), count('Reload Queued')];
  rewrite(4, 1500);
  gw.signal('SIGHUP');
  await creating(4);
  rewrite(5);
  const posted = fetch(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
  await waitFor(() => count('Reload Queued') === queued + 1, 'the POST queued');
  rewrite(6);
  gw.signal('SIGHUP');
  await waitFor(() => count('Reload Queued') === queued + 2, 'the SIGHUP coalesced');
  const res = await posted;
  const body = (await res.json()) as { status: string; note?: string };
  assert.equal(res.status, 200);
  assert.equal(body.status, 'reloaded');
  assert.match(body.note ?? '', /^queued behind the reload already running/);
  // Tag 4's reload, then one more for both requests: it read the file after both, so tag 5 never ran.
  await waitFor(() => count('Config Reloaded') === reloaded + 2, 'two reloads', 10_000);
  assert.equal(await servedTag(), '6');
  assert.ok(!gw.logs.some((l) => l.msg === 'Tag Creating' && l.tag === 5), 'tag 5 was never loaded');
});

test('reload(config) called twice at once (embedding): the second applies after the first, and is what serves', async () => {
  // What startInProcess adds, so that the reloads change nothing a restart would need.
  const base = { server: { listen_host: '127.0.0.1', listen_port: 0 }, admin: { listen_host: '127.0.0.1', listen_port: 0 }, logging: { format: 'json' } };
  const config = (tag: number, delay: number) => parseConfigObject({ ...base, ...tagged(tag, delay) });
  const local = await startInProcess({ ...base, ...tagged(1, 0) });
  after(() => local.close());
  await Promise.all([local.gateway.reload(config(2, 800)), local.gateway.reload(config(3, 0))]);
  assert.equal((await fetch(`${local.url}/`)).headers.get('x-tag'), '3');
});
