// What was wrong: an upstream that failed while a plugin's async onResponse ran on its head (a connection reset after
// the head, before the body) had its 502 answered at once, which ran the route's response hooks again while the first
// run was still in flight, on the same per-plugin context. The hook that saw the 200 wrote its header onto the 502,
// the one for the 502 found ctx.responseHeaders unbound by the first one's end and threw, and the client got 500
// plugin_failed with a log line blaming a correct plugin.
// What is right now: the failure waits for the hook to settle; then the 502 is answered, its hooks run once, after.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

interface HookEvent {
  readonly at: 'enter' | 'exit';
  readonly status: number;
  readonly error?: string;
}
const events = (): HookEvent[] => ((globalThis as Record<string, unknown>).__review16ResetEvents ??= []) as HookEvent[];

/** onResponse waits 300 ms (the upstream resets meanwhile), then tags the response with the status it saw. */
const PLUGIN = `
const events = () => (globalThis.__review16ResetEvents ??= []);
export default {
  name: 'slow-tag',
  create() {
    return {
      async onResponse(ctx) {
        const status = ctx.status;
        events().push({ at: 'enter', status });
        await new Promise((resolve) => setTimeout(resolve, 300));
        try {
          ctx.responseHeaders.set('x-tag-' + status, 'seen');
          events().push({ at: 'exit', status });
        } catch (err) {
          events().push({ at: 'exit', status, error: err.name });
          throw err;
        }
      },
    };
  },
};
`;

const dir = mkdtempSync(join(tmpdir(), 'review16-reset-'));
let backend: Server;
let gw: InProcessGateway;

before(async () => {
  writeFileSync(join(dir, 'slow-tag.mjs'), PLUGIN);
  // Sends a 200 head promising 100 bytes, then resets the connection 100 ms later: while the hook still runs.
  backend = createServer((req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.flushHeaders();
    // /hold: the upstream stays silent (the client leaves instead).
    setTimeout(() => req.socket.destroy(), req.url === '/hold' ? 3_000 : 100);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: { upstreams: upstreams([(backend.address() as AddressInfo).port]), retries: 0 },
    plugins: [{ name: 'slow-tag', module: join(dir, 'slow-tag.mjs') }],
    middleware: { plugins: ['slow-tag'] },
    admin: { enabled: false },
  });
});
after(async () => {
  await gw?.close();
  await new Promise<void>((resolve) => backend?.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

test('an upstream reset while onResponse runs: 502 after the hook settles, its hooks run once more after it, no 500', async () => {
  events().length = 0;
  const res = await rawRequest(Number(new URL(gw.url).port), 'GET /r HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 502);
  assert.match(res.body, /"code":"upstream_/);
  assert.equal(res.headers['x-tag-200'], undefined, "the 200's hook wrote nothing on the 502");
  assert.equal(res.headers['x-tag-502'], 'seen');
  // One run at a time: the 502's run began after the 200's ended, and neither failed.
  assert.deepEqual(events(), [
    { at: 'enter', status: 200 },
    { at: 'exit', status: 200 },
    { at: 'enter', status: 502 },
    { at: 'exit', status: 502 },
  ]);
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
  assert.equal(line?.status, 502);
  assert.ok(!gw.logs.some((l) => l.msg === 'Plugin Failed'), 'no plugin blamed');
});

test('a client that leaves while onResponse runs is logged 499, and the hook runs once', async () => {
  events().length = 0;
  const socket = await openSocket(Number(new URL(gw.url).port));
  socket.write('GET /hold HTTP/1.1\r\nHost: gw\r\n\r\n');
  await waitFor(() => events().length >= 1, 'the hook entered', 5_000);
  socket.destroy();
  await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed' && l.path === '/hold'), 'the request logged', 5_000);
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/hold');
  assert.equal(line?.status, 499);
  await waitFor(() => events().length >= 2, 'the hook settled', 5_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(events(), [
    { at: 'enter', status: 200 },
    { at: 'exit', status: 200 },
  ]);
});

// From the fix's review: an onResponse abandoned at plugin_timeout runs on (a timeout cannot stop it), and the error
// reply's hooks then reused its facade: its late set() landed on the 502's headers.
test('a hook abandoned at plugin_timeout writes nothing on the error reply whose hooks run after it', async () => {
  const file = join(dir, 'late-tag.mjs');
  writeFileSync(
    file,
    `export default { name: 'late-tag', create() { return { async onResponse(ctx) {
      const status = ctx.status;
      await new Promise((resolve) => setTimeout(resolve, status === 200 ? 400 : 250));
      try { ctx.responseHeaders.set('x-late-' + status, 'seen'); } catch {}
    } }; } };`,
  );
  const late = await startInProcess({
    load_balancing: { upstreams: upstreams([(backend.address() as AddressInfo).port]), retries: 0 },
    plugins: [{ name: 'late-tag', module: file }],
    middleware: { plugins: ['late-tag'], plugin_timeout: '300ms' },
    admin: { enabled: false },
  });
  try {
    const res = await rawRequest(Number(new URL(late.url).port), 'GET /r HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-late-200'], undefined, 'the abandoned hook wrote nothing');
    assert.equal(res.headers['x-late-502'], 'seen');
  } finally {
    await late.close();
  }
});
