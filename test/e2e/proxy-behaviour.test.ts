// What a client and a backend see through the gateway: methods, queries, hop-by-hop, X-Forwarded-*, gateway headers,
// errors, /health, upgrades and the three request log lines.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { closedPort, startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { openSocket, parseHead, rawRequest, readUntil } from '../helpers/raw.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let backend: TestBackend;
let gw: InProcessGateway;
let deadGw: InProcessGateway;
/** Answers 504 after 300 ms. Its own gateway: a timeout takes the backend out of rotation for a while (passive check). */
let slowGw: InProcessGateway;
const client = createClient();

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  slowGw = await startInProcess({
    server: { timeouts: { upstream_response: '300ms' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  deadGw = await startInProcess({ load_balancing: { upstreams: upstreams([await closedPort()]), retries: 0 } });
});
after(async () => {
  await client.close();
  await gw?.close();
  await deadGw?.close();
  await slowGw?.close();
  await backend?.stop();
});

function assertGatewayHeaders(headers: IncomingHttpHeaders | Record<string, string>, what: string): string {
  assert.equal(headers['x-proxy-by'], 'Portcullis', `${what}: X-Proxy-By`);
  assert.match(String(headers['x-request-id']), UUID_V4, `${what}: X-Request-ID`);
  assert.match(String(headers['x-response-time']), /^\d+ms$/, `${what}: X-Response-Time`);
  return String(headers['x-request-id']);
}

describe('requests arrive unchanged', () => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']) {
    test(`${method} with its path and query string`, async () => {
      const url = '/api/v1/items?b=2&a=1&a=%C3%A9&empty=&flag';
      const body = method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? undefined : '{"x":1}';
      const res = await client.request(`${gw.url}${url}`, {
        method,
        body,
        headers: body ? { 'content-type': 'application/json' } : {},
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-echo-method'], method);
      assert.equal(res.headers['x-echo-url'], url);
      if (method === 'HEAD') assert.equal(res.text, '');
      else assert.equal(res.json<EchoBody>().url, url);
    });
  }

  test('request bodies reach the backend intact', async () => {
    const res = await client.request(`${gw.url}/upload`, { method: 'POST', body: 'hello body' });
    assert.deepEqual(res.json(), { sha256: createHash('sha256').update('hello body').digest('hex'), bytes: 10 });
  });
});

describe('hop-by-hop headers', () => {
  test('request: Connection and what it names, Keep-Alive, TE, Trailer, Proxy-* never reach the backend', async () => {
    const res = await rawRequest(
      gw.gateway.port,
      'GET /echo HTTP/1.1\r\nHost: api.test\r\nConnection: close, X-Private\r\nX-Private: secret\r\n' +
        'Keep-Alive: timeout=9\r\nTE: trailers\r\nTrailer: x-sum\r\nProxy-Connection: keep-alive\r\n' +
        'Proxy-Authorization: Basic Zm9vOmJhcg==\r\nX-End-To-End: kept\r\n\r\n',
    );
    assert.equal(res.status, 200);
    const seen = (JSON.parse(res.body) as EchoBody).headers;
    for (const name of ['x-private', 'keep-alive', 'te', 'trailer', 'proxy-connection', 'proxy-authorization']) {
      assert.equal(seen[name], undefined, `${name} reached the backend`);
    }
    assert.notEqual(seen.connection, 'close, X-Private');
    assert.equal(seen['x-end-to-end'], 'kept');
    assert.equal(seen.host, 'api.test');
  });

  test('response: the backend hop-by-hop headers (and those its Connection names) never reach the client', async () => {
    const res = await rawRequest(gw.gateway.port, 'GET /hop HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-secret'], undefined);
    assert.equal(res.headers['keep-alive'], undefined);
    assert.equal(res.headers.connection, 'close');
    assert.equal(res.headers['x-backend'], 'echo');
    assert.ok(res.body.includes('echo'), 'the body is relayed');
  });
});

describe('X-Forwarded-* and X-Request-ID', () => {
  test('from an untrusted client, a forged chain is replaced; Proto and Host are set', async () => {
    const res = await client.request(`${gw.url}/xf`, {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'forged.test' },
    });
    const seen = res.json<EchoBody>().headers;
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], `127.0.0.1:${gw.gateway.port}`);
  });

  test('from a trusted proxy, the chain is extended', async () => {
    const trusting = await startInProcess({
      server: { trusted_proxies: ['127.0.0.0/8'] },
      load_balancing: { upstreams: upstreams([backend.port]) },
    });
    try {
      const res = await client.request(`${trusting.url}/xf`, {
        headers: { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.test' },
      });
      const seen = res.json<EchoBody>().headers;
      assert.equal(seen['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
      assert.equal(seen['x-forwarded-proto'], 'https');
      assert.equal(seen['x-forwarded-host'], 'public.test');
      const done = trusting.logs.find((l) => l.msg === 'Request Completed');
      assert.equal(done?.client, '198.51.100.7');
    } finally {
      await trusting.close();
    }
  });

  test('the backend receives the same X-Request-ID the client gets; a client-sent one is not trusted', async () => {
    const res = await client.request(`${gw.url}/id`, { headers: { 'x-request-id': 'mine' } });
    const id = assertGatewayHeaders(res.headers, 'proxied');
    assert.equal(res.json<EchoBody>().headers['x-request-id'], id);
  });
});

describe('gateway headers and bodies', () => {
  test('/health answers {"status":"ok","service":"portcullis"} with the gateway headers, without a backend hit', async () => {
    const before = backend.hits;
    const res = await client.request(`${gw.url}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: 'ok', service: 'portcullis' });
    assertGatewayHeaders(res.headers, '/health');
    assert.equal(backend.hits, before);
  });

  test('502 when the backend is unreachable: JSON {error, request_id} and the gateway headers', async () => {
    const res = await client.request(`${deadGw.url}/x`);
    assert.equal(res.status, 502);
    const id = assertGatewayHeaders(res.headers, '502');
    const body = res.json<{ error: string; request_id: string }>();
    assert.equal(typeof body.error, 'string');
    assert.equal(body.request_id, id);
    assert.match(String(res.headers['content-type']), /application\/json/);
  });

  test('504 when the backend answers after upstream_response: JSON {error, request_id} and the gateway headers', async () => {
    const started = Date.now();
    const res = await client.request(`${slowGw.url}/slow?ms=2000`);
    assert.equal(res.status, 504);
    assert.ok(Date.now() - started < 1_800, 'answered at the timeout, not when the backend finished');
    const id = assertGatewayHeaders(res.headers, '504');
    assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'error', 'request_id']);
    assert.equal(res.json().request_id, id);
  });
});

describe('upgrade and logs', () => {
  test('a WebSocket-style upgrade is switched through and bytes flow both ways', async () => {
    const socket = await openSocket(gw.gateway.port);
    try {
      socket.write('GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly');
      const head = await readUntil(socket, (d) => d.includes('\r\n\r\n'));
      const split = head.indexOf('\r\n\r\n');
      const { status, headers } = parseHead(head.subarray(0, split).toString());
      assert.equal(status, 101);
      assert.equal(headers['x-backend-upgrade'], 'yes');
      assert.equal(headers.upgrade, 'websocket');
      assertGatewayHeaders(headers, '101');
      let echoed = head.subarray(split + 4).toString();
      if (!echoed.includes('early')) echoed += (await readUntil(socket, (d) => d.includes('early'))).toString();
      assert.ok(echoed.includes('early'), 'bytes sent with the upgrade request were passed on');
      socket.write('ping-123');
      const back = await readUntil(socket, (d) => d.includes('ping-123'));
      assert.ok(back.toString().includes('ping-123'));
    } finally {
      socket.destroy();
    }
  });

  test('each request logs Request Start, Select Upstream and Request Completed with its fields', async () => {
    const res = await client.request(`${gw.url}/logged/path?q=1`, { method: 'PUT', body: 'x' });
    const id = String(res.headers['x-request-id']);
    const mine = gw.logs.filter((l) => l.request_id === id);
    assert.deepEqual(
      mine.map((l) => l.msg),
      ['Request Start', 'Select Upstream', 'Request Completed'],
    );
    const [start, select, done] = mine as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.equal(start.method, 'PUT');
    assert.equal(start.path, '/logged/path');
    assert.equal(select.upstream, `127.0.0.1:${backend.port}`);
    assert.equal(done.method, 'PUT');
    assert.equal(done.path, '/logged/path');
    assert.equal(done.upstream, `127.0.0.1:${backend.port}`);
    assert.equal(done.status, 200);
    assert.equal(typeof done.duration_ms, 'number');
    assert.ok((done.duration_ms as number) >= 0);
  });
});

test('malformed HTTP gets 400 JSON with the gateway headers, before any request exists', async () => {
  const backend = await startBackend('m');
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  try {
    const res = await rawRequest(gw.gateway.port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(res.headers['x-proxy-by'], 'Portcullis');
    assert.equal(JSON.parse(res.body).request_id, res.headers['x-request-id']);
    assert.equal(backend.hits, 0);
  } finally {
    await gw.close();
    await backend.stop();
  }
});
