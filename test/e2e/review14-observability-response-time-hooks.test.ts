// X-Response-Time is the time to the response headers (README), but it was stamped before the route's onResponse
// hooks ran: a plugin's hook that waited 300 ms left it at 1 ms, while the access log's duration counted the wait.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

test("X-Response-Time counts a plugin's onResponse that waits", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-rt-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = join(dir, 'slow-response.mjs');
  writeFileSync(
    plugin,
    `import { setTimeout as sleep } from 'node:timers/promises';
     export default { name: 'slow-response', create() { return { async onResponse() { await sleep(300); } }; } };`,
  );
  const backend = await startBackend('one');
  after(() => backend.stop());
  const client = createClient();
  after(() => client.close());
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'slow', module: plugin }],
    routes: [
      { name: 'hooked', match: { path_prefix: '/hooked' }, service: 'default', plugins: ['slow'] },
      { name: 'plain', match: { path_prefix: '/' }, service: 'default' },
    ],
  });
  after(() => gw.close());
  const hooked = await client.request(`${gw.url}/hooked`);
  assert.equal(hooked.status, 200);
  const ms = Number(/^(\d+)ms$/.exec(String(hooked.headers['x-response-time']))?.[1]);
  assert.ok(ms >= 300, `X-Response-Time ${String(hooked.headers['x-response-time'])} counts the hook's 300 ms`);
  const plain = await client.request(`${gw.url}/plain`);
  assert.match(String(plain.headers['x-response-time']), /^\d+ms$/);
});
