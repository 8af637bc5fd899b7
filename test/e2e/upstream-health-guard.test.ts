// Requests the gateway refuses, or that fail on the client's side, never take an upstream out of rotation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { openSocket, rawRequest } from '../helpers/raw.js';
import { sleep } from '../helpers/wait.js';

let backends: TestBackend[];
let gw: InProcessGateway;
let port: number;
const client = createClient();

before(async () => {
  backends = [await startBackend('a'), await startBackend('b')];
  gw = await startInProcess({
    load_balancing: { upstreams: upstreams(backends.map((b) => b.port)), health_check: { passive_cooldown: '60s' } },
  });
  port = Number(new URL(gw.url).port);
});
after(async () => {
  await client.close();
  await gw.close();
  await Promise.all(backends.map((b) => b.stop()));
});

test('many OPTIONS * and absolute-form requests: each 400, then every upstream is healthy and /ready is 200', async () => {
  const targets = [
    'OPTIONS * HTTP/1.1',
    'GET * HTTP/1.1',
    `GET http://127.0.0.1:${port}/x HTTP/1.1`,
    'GET http://evil.example/x HTTP/1.1',
    'OPTIONS http://evil.example/* HTTP/1.1',
    'POST https://evil.example/ HTTP/1.1',
  ];
  const before = backends.map((b) => b.hits);
  for (let round = 0; round < 5; round++) {
    for (const line of targets) {
      const res = await rawRequest(port, `${line}\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 400, line);
    }
  }
  assert.deepEqual(
    backends.map((b) => b.hits),
    before,
    'no refused request reached a backend',
  );
  const ready = await client.request(`${gw.adminUrl}/ready`);
  assert.equal(ready.status, 200, ready.text);
  const status = (await client.request(`${gw.adminUrl}/api/status`)).json<{ upstreams: Array<{ health: string }> }>();
  assert.deepEqual(
    status.upstreams.map((u) => u.health),
    ['healthy', 'healthy'],
  );
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Down').length, 0);
});

test('clients that leave mid-upload or mid-response never cool an upstream down', async () => {
  for (let i = 0; i < 6; i++) {
    // Half a body, then gone.
    const upload = await openSocket(port);
    upload.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
    await sleep(30);
    upload.destroy();
    // A big download, then gone before reading it.
    const download = await openSocket(port);
    download.write('GET /download?bytes=5000000 HTTP/1.1\r\nHost: gw\r\n\r\n');
    await sleep(30);
    download.destroy();
  }
  await sleep(200);
  const status = (await client.request(`${gw.adminUrl}/api/status`)).json<{ upstreams: Array<{ health: string }> }>();
  assert.deepEqual(
    status.upstreams.map((u) => u.health),
    ['healthy', 'healthy'],
  );
  assert.equal((await client.request(`${gw.adminUrl}/ready`)).status, 200);
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Down').length, 0);
});
