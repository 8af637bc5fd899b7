// Load balancing found by review: an upload the upstream refuses early, half-answered fresh connections, retries
// that went back to an upstream the request had already failed on, and a full per-upstream queue while another
// upstream is idle. Every backend here is a real socket server; assertions count requests and log lines, not time.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { closedPort, startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

let cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function gateway(input: Record<string, unknown>): Promise<InProcessGateway> {
  const gw = await startInProcess(input);
  cleanups.push(() => gw.close());
  return gw;
}

async function listen(server: Server | TcpServer): Promise<number> {
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return port;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * Sends `head` then `body` on a fresh connection and resolves with the status once the gateway closes it (the head
 * says Connection: close). The client goes on writing while the gateway answers, as a real uploader would.
 */
function send(port: number, head: string, body: Buffer = Buffer.alloc(0)): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: Number(text.split(' ')[1] ?? 0), text }));
    socket.write(head);
    if (body.length > 0) socket.write(body);
  });
}

function logged(gw: InProcessGateway, msg: string): Array<Record<string, unknown>> {
  return gw.logs.filter((l) => l.msg === msg);
}

test('an upload the upstream refuses early (413 and close, unread) never takes it out of rotation nor is retried', async () => {
  let seen = 0;
  const refusing = createHttpServer((_req, res) => {
    seen++;
    res.writeHead(413, { connection: 'close', 'content-type': 'text/plain' });
    res.end('too large');
  });
  const port = await listen(refusing);
  const gw = await gateway({ load_balancing: { strategy: 'round_robin', upstreams: upstreams([port]), retries: 2 } });
  const big = Buffer.alloc(2 * 1024 * 1024, 'x');
  for (const method of ['POST', 'PUT', 'POST']) {
    const res = await send(portOf(gw.url), `${method} /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n`, big);
    // The 413 when it got through before the reset, else the reset's 502: never a retry (part of the body was sent).
    assert.ok(res.status === 413 || res.status === 502, `status ${res.status}`);
  }
  assert.equal(logged(gw, 'Upstream Down').length, 0, 'a client-sized upload must not count against the upstream');
  assert.equal(logged(gw, 'Upstream Retry').length, 0, 'a body partly sent cannot be sent again');
  assert.equal(seen, 3, 'each upload reached the upstream once');
  const statuses = logged(gw, 'Request Completed').map((l) => l.status);
  assert.equal(statuses.length, 3);
});

/** An upstream that answers half a response head on every (fresh) connection, then resets it: a crash mid-answer. */
async function halfHeadThenReset(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createTcpServer((s) => {
    connections++;
    s.on('error', () => undefined);
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Ty');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
  });
  const port = await listen(server);
  return { port, connections: () => connections };
}

async function echo(): Promise<number> {
  const backend = await startBackend('echo');
  cleanups.push(() => backend.stop());
  return backend.port;
}

for (const [method, retries] of [['GET', 0], ['POST', 1]] as const) {
  test(`a fresh connection reset after half a head is the upstream's failure (${method}, retries: ${retries}): no free retry, out of rotation`, async () => {
    const crashing = await halfHeadThenReset();
    const gw = await gateway({ load_balancing: { strategy: 'round_robin', upstreams: upstreams([crashing.port, await echo()]), retries } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await send(portOf(gw.url), `${method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)).status);
    }
    assert.deepEqual(statuses.filter((s) => s !== 200), [502], `statuses ${statuses.join(',')}`);
    assert.equal(logged(gw, 'Upstream Retry').length, 0, 'neither retries: 0 nor a POST earns a retry');
    assert.equal(logged(gw, 'Upstream Down').length, 1);
    assert.equal(crashing.connections(), 1, 'out of rotation after its first failure (10 s cooldown)');
  });
}

test('retries never go back to an upstream the request already failed on; none untried left: the last failure', async () => {
  const dead = [await closedPort(), await closedPort()];
  const alive = await echo();
  const name = (u: unknown): string => (u === `127.0.0.1:${dead[0]}` ? 'dead1' : u === `127.0.0.1:${dead[1]}` ? 'dead2' : 'alive');
  // Two refused upstreams and retries: 5. Once both have failed (and cool down), the panic pick used to try them again.
  const twoDead = await gateway({ load_balancing: { strategy: 'round_robin', upstreams: upstreams(dead), retries: 5 } });
  const res = await send(portOf(twoDead.url), 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 502);
  assert.match(res.text, /"code":"upstream_unreachable"/, 'the last failure is the answer');
  assert.deepEqual(logged(twoDead, 'Select Upstream').map((l) => name(l.upstream)).sort(), ['dead1', 'dead2']);
  assert.equal(logged(twoDead, 'Upstream Retry').length, 1);
  // With one alive, every request is answered, each tried upstream once at most.
  const withAlive = await gateway({ load_balancing: { strategy: 'random', upstreams: upstreams([...dead, alive]), retries: 5, health_check: { passive_cooldown: '1ms' } } });
  for (let i = 0; i < 6; i++) {
    const before = logged(withAlive, 'Select Upstream').length;
    assert.equal((await send(portOf(withAlive.url), 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status, 200);
    const picked = logged(withAlive, 'Select Upstream').slice(before).map((l) => name(l.upstream));
    assert.equal(new Set(picked).size, picked.length, `one request went to ${picked.join(',')}`);
  }
});

for (const strategy of ['round_robin', 'random'] as const) {
  test(`${strategy}: an upstream whose queue is full refuses before sending; the request goes to the idle one`, async () => {
    const held: Array<() => void> = [];
    const hits = [0, 0];
    const ports: number[] = [];
    for (const i of [0, 1]) {
      const server = createHttpServer((req, res) => {
        hits[i]!++;
        req.resume();
        const answer = (): void => void res.end(`b${i}`);
        if (req.url === '/hold') held.push(answer);
        else answer();
      });
      ports.push(await listen(server));
    }
    cleanups.push(async () => held.forEach((answer) => answer()));
    const gw = await gateway({
      load_balancing: { strategy, upstreams: upstreams(ports), retries: 1, connections_per_upstream: 1, queue_limit: 0, queue_timeout: '30s' },
    });
    // One request holds one upstream's only connection; with queue_limit 0 it refuses anything more at once.
    const hold = send(portOf(gw.url), 'GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await waitFor(() => held.length === 1, 'the held request at an upstream', 10_000);
    const busy = hits[0] === 1 ? 0 : 1;
    for (let i = 0; i < 6; i++) {
      // POST too: the refusal came before anything was sent, so any method may go elsewhere.
      const method = i % 2 === 0 ? 'GET' : 'POST';
      const res = await send(portOf(gw.url), `${method} /q${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.text.endsWith(`b${1 - busy}`), res.text);
    }
    assert.equal(hits[busy], 1, 'the busy upstream got only the held request');
    assert.equal(logged(gw, 'Upstream Down').length, 0, 'a full queue is no health failure');
    held.forEach((answer) => answer());
    assert.equal((await hold).status, 200);
  });
}
