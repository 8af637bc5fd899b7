// Pool and connection exhaustion: queued requests of departed clients are cancelled, the upstream queue is bounded,
// slow uploads are cut, and one address cannot hold every connection.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { openSocket, rawRequest, readUntil } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

let backend: TestBackend;
const client = createClient();
const gateways: InProcessGateway[] = [];
const sockets: Socket[] = [];

before(async () => {
  backend = await startBackend('pool');
});
after(async () => {
  for (const s of sockets) s.destroy();
  await client.close();
  await Promise.all(gateways.map((g) => g.close()));
  await backend.stop();
});

async function gateway(extra: { server?: ConfigInput; load_balancing?: ConfigInput } = {}): Promise<{ gw: InProcessGateway; port: number }> {
  const gw = await startInProcess({
    server: extra.server ?? {},
    load_balancing: { upstreams: upstreams([backend.port]), ...extra.load_balancing },
    admin: { enabled: false },
  });
  gateways.push(gw);
  return { gw, port: Number(new URL(gw.url).port) };
}

async function socketTo(port: number): Promise<Socket> {
  const s = await openSocket(port);
  sockets.push(s);
  return s;
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`;

describe('a client that leaves while its request waits for a connection', () => {
  test('is cancelled: the backend never gets it, and the connection is free for the next request at once', async () => {
    const { port } = await gateway({ load_balancing: { connections_per_upstream: 1 } });
    const hitsBefore = backend.hits;
    const holder = rawRequest(port, GET('/slow?ms=700'));
    await waitFor(() => backend.active === 1, 'the slow request at the backend');
    // Queued behind it: a big download whose client leaves before it is sent.
    const leaver = await socketTo(port);
    leaver.write('GET /download?bytes=50000000 HTTP/1.1\r\nHost: gw\r\n\r\n');
    await sleep(100);
    leaver.destroy();
    assert.equal((await holder).status, 200);
    const started = Date.now();
    const next = await rawRequest(port, GET('/after'), 4_000);
    assert.equal(next.status, 200);
    assert.ok(Date.now() - started < 1_000, `the next request waited ${Date.now() - started} ms`);
    assert.equal(backend.hits - hitsBefore, 2, 'only the slow request and the next one reached the backend');
  });
});

describe('a client that leaves with pipelined requests queued behind a slow one', () => {
  // Pipelined requests run one at a time (src/listeners/pipelining.ts): the queued ones never started, so nothing of
  // them goes upstream or is logged; the one running is cancelled and logged 499.
  test('the running request is cancelled and logged (499), the queued ones never reach the upstream, and the upstream connection is free at once', async () => {
    const { gw, port } = await gateway({ load_balancing: { connections_per_upstream: 1 } });
    const leaver = await socketTo(port);
    const hitsBefore = backend.hits;
    leaver.write(
      'GET /slow?ms=300 HTTP/1.1\r\nHost: gw\r\n\r\n' +
        'GET /download?bytes=20000000 HTTP/1.1\r\nHost: gw\r\n\r\n' +
        'GET /pipelined-third HTTP/1.1\r\nHost: gw\r\n\r\n',
    );
    await sleep(100);
    leaver.destroy();
    await sleep(500);
    const started = Date.now();
    const next = await rawRequest(port, GET('/after'), 4_000);
    assert.equal(next.status, 200);
    assert.ok(Date.now() - started < 1_000, `the next request waited ${Date.now() - started} ms`);
    await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed' && l.path === '/slow' && l.status === 499), 'the running request logged with 499');
    assert.equal(backend.hits - hitsBefore, 2, 'only /slow and /after reached the backend');
    assert.ok(!gw.logs.some((l) => l.path === '/download' || l.path === '/pipelined-third'), 'the queued requests never started');
  });
});

describe('load_balancing.queue_limit and queue_timeout', () => {
  test('a request waits at most queue_timeout, a full queue answers at once; both 503 with Retry-After', async () => {
    const { gw, port } = await gateway({ load_balancing: { connections_per_upstream: 1, queue_limit: 1, queue_timeout: '300ms', retries: 0 } });
    const holder = rawRequest(port, GET('/slow?ms=1500'));
    await waitFor(() => backend.active === 1, 'the slow request at the backend');
    const waitedStart = Date.now();
    const waiting = rawRequest(port, GET('/queued'));
    // /queued must hold the queue's one place before /over arrives: wait until the gateway has it, not a fixed time.
    await waitFor(() => gw.logs.some((l) => l.msg === 'Request Start' && l.path === '/queued'), 'the queued request at the gateway');
    await sleep(50);
    const fullStart = Date.now();
    const full = await rawRequest(port, GET('/over'));
    assert.equal(full.status, 503);
    assert.ok(Date.now() - fullStart < 200, 'a full queue answers at once');
    assert.equal(full.headers['retry-after'], '1');
    const waited = await waiting;
    assert.equal(waited.status, 503);
    assert.equal(waited.headers['retry-after'], '1');
    const ms = Date.now() - waitedStart;
    assert.ok(ms >= 280 && ms < 1_200, `waited ${ms} ms`);
    assert.equal(JSON.parse(waited.body).request_id, waited.headers['x-request-id']);
    assert.equal((await holder).status, 200);
    // The busy answers did not take the upstream out of rotation.
    assert.equal((await rawRequest(port, GET('/again'))).status, 200);
  });
});

describe('server.timeouts.request_body_chunk', () => {
  test('slow uploads (more than the pool size) are cut with 408, and an ordinary GET answers quickly meanwhile', async () => {
    const { port } = await gateway({
      server: { timeouts: { request_body_chunk: '600ms' } },
      load_balancing: { connections_per_upstream: 2, queue_timeout: '10s' },
    });
    const uploads: Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await socketTo(port);
      s.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\n' + 'x'.repeat(100));
      uploads.push(s);
    }
    await waitFor(() => backend.active >= 2, 'the pool held by slow uploads');
    const started = Date.now();
    const res = await rawRequest(port, GET('/ordinary'), 5_000);
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 3_000, `the GET took ${Date.now() - started} ms`);
    // Each stalled upload got its 408 (the connection then closes).
    const answers = await Promise.all(uploads.map((s) => readUntil(s, (d) => d.includes('\r\n\r\n'), 4_000)));
    for (const answer of answers) assert.match(answer.toString(), /^HTTP\/1\.1 408 /);
  });

  test('an upload that keeps sending is not cut', async () => {
    // A byte every 100 ms against a 1 s limit: even a stall of several hundred ms on a loaded machine (the gateway
    // runs in this process) leaves the gateway's timer short of firing before the next byte is read.
    const { port } = await gateway({ server: { timeouts: { request_body_chunk: '1s' } } });
    const s = await socketTo(port);
    s.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\nConnection: close\r\n\r\n');
    for (let i = 0; i < 10; i++) {
      await sleep(100);
      s.write('x');
    }
    const answer = (await readUntil(s, (d) => d.includes('"bytes"'), 3_000)).toString();
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /"bytes":10/);
  });
});

describe('server.max_connections_per_client', () => {
  test('one address gets at most the cap; the next connection is answered 429 and closed; a freed slot is reusable', async () => {
    const { port } = await gateway({ server: { max_connections_per_client: 3 } });
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await socketTo(port);
      s.write('GET /x HTTP/1.1\r\nHost: gw\r\n\r\n');
      await readUntil(s, (d) => d.includes('"backend"'));
      held.push(s);
    }
    const refused = await rawRequest(port, GET('/x'));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(JSON.parse(refused.body).request_id, refused.headers['x-request-id']);
    held[0]!.destroy();
    await sleep(50);
    assert.equal((await rawRequest(port, GET('/x'))).status, 200);
  });

  test('a trusted proxy is exempt', async () => {
    const { port } = await gateway({ server: { max_connections_per_client: 2, trusted_proxies: ['127.0.0.1'] } });
    for (let i = 0; i < 4; i++) {
      const s = await socketTo(port);
      s.write('GET /x HTTP/1.1\r\nHost: gw\r\n\r\n');
      await readUntil(s, (d) => d.includes('"backend"'));
    }
    assert.equal((await rawRequest(port, GET('/x'))).status, 200);
  });
});
