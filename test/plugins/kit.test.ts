// The test kit as a plugin author uses it: createTestGateway + inject, an echo upstream, captured logs, reload.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestGateway, type EchoedRequest, type InjectResponse, type TestGateway } from 'portcullis/testing';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { fixture } from './helpers.js';

describe('createTestGateway', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await createTestGateway({
      plugins: [{ name: 'hello', module: fixture('hello.mjs'), config: { value: 'world' } }],
      middleware: { plugins: ['hello'] },
    });
  });
  after(() => gateway.close());

  test('inject goes through the plugins to the echo upstream and back', async () => {
    const res = await gateway.inject({ method: 'POST', url: '/things?id=1', headers: { 'x-client': 'kit' }, body: { a: 1 } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-plugin'], 'hello');
    const echoed = res.json();
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.url, '/things?id=1');
    assert.equal(echoed.headers['x-hello'], 'world');
    assert.equal(echoed.headers['x-client'], 'kit');
    assert.equal(echoed.headers['content-type'], 'application/json');
    assert.equal(echoed.body, '{"a":1}');
  });

  test('a plugin answer comes back as it was sent; the log lines are captured', async () => {
    const res = await gateway.inject({ url: '/', headers: { 'x-teapot': '1' } });
    assert.equal(res.status, 418);
    assert.deepEqual(res.json(), { error: 'teapot' });
    const id = res.headers['x-request-id'];
    assert.ok(gateway.logs.some((l) => l.msg === 'Request Completed' && l.request_id === id && l.status === 418));
  });

  test('reload applies a new plugin config', async () => {
    await gateway.reload({
      plugins: [{ name: 'hello', module: fixture('hello.mjs'), config: { value: 'again' } }],
      middleware: { plugins: ['hello'] },
    });
    assert.equal((await gateway.inject({ url: '/' })).json().headers['x-hello'], 'again');
  });

  test('a config error rejects createTestGateway with the one-line message', async () => {
    await assert.rejects(
      createTestGateway({ plugins: [{ name: 'x', module: './nope.mjs' }], middleware: { plugins: ['x'] } }),
      (err: Error) => err.name === 'ConfigError' && err.message === 'plugins[0].module: cannot load ./nope.mjs: not found',
    );
  });
});

// The kit must answer what the gateway answers on its port: a test that passes in the kit for a request the gateway
// refuses (or routes elsewhere) proves nothing. Each case goes through inject() and, as raw bytes, through a socket to
// the same gateway's listener (same config, same plugins and routes), and the two answers are compared.
describe('inject answers the request target and Host as the port does', () => {
  let gateway: TestGateway;
  let port: number;
  before(async () => {
    gateway = await createTestGateway({
      server: { proxy_by: 'kit-edge' },
      plugins: [{ name: 'hello', module: fixture('hello.mjs'), config: { value: 'world' } }],
      middleware: { plugins: ['hello'] },
      routes: [
        { name: 'rec', match: { path_prefix: '/m/rec' }, service: 'default' },
        { name: 'm', match: { path_prefix: '/m' }, service: 'default', plugins: [] },
      ],
    });
    port = Number(new URL(gateway.url).port);
  });
  after(() => gateway.close());

  /** One request both ways: `hosts` are the Host lines (none when empty); the kit's default Host is localhost:80. */
  async function both(target: string, hosts: string[] = ['localhost:80']): Promise<{ kit: InjectResponse; raw: RawResponse }> {
    const host = hosts.length === 0 ? undefined : hosts.length === 1 ? hosts[0] : hosts;
    const kit = await gateway.inject({ url: target, headers: { host } });
    const lines = hosts.map((h) => `Host: ${h}\r\n`).join('');
    const raw = await rawRequest(port, `GET ${target} HTTP/1.1\r\n${lines}User-Agent: lightMyRequest\r\nConnection: close\r\n\r\n`);
    return { kit, raw };
  }

  /** The same status, gateway headers and body (the request id aside, which is each request's own). */
  function assertSameAnswer(kit: InjectResponse, raw: RawResponse, what: string): void {
    assert.equal(kit.status, raw.status, `${what}: status (kit ${kit.body}, port ${raw.body})`);
    for (const name of ['content-type', 'cache-control', 'x-proxy-by', 'x-plugin']) {
      assert.equal(kit.headers[name], raw.headers[name], `${what}: ${name}`);
    }
    assert.equal(raw.headers['x-proxy-by'], 'kit-edge', `${what}: the configured X-Proxy-By`);
    assert.ok(kit.headers['x-request-id'] && kit.headers['x-response-time'], `${what}: the kit's answer has the gateway headers`);
    if (raw.status !== 200) {
      const { request_id: kitId, ...kitBody } = kit.json<Record<string, unknown>>();
      const { request_id: rawId, ...rawBody } = JSON.parse(raw.body) as Record<string, unknown>;
      assert.deepEqual(kitBody, rawBody, `${what}: body`);
      assert.equal(kitId, kit.headers['x-request-id'], `${what}: request_id is X-Request-ID`);
      assert.equal(rawId, raw.headers['x-request-id']);
      return;
    }
    const kitEcho = kit.json<EchoedRequest>();
    const rawEcho = JSON.parse(raw.body) as EchoedRequest;
    assert.equal(kitEcho.url, rawEcho.url, `${what}: the target the upstream got`);
    assert.equal(kitEcho.headers.host, rawEcho.headers.host, `${what}: the Host the upstream got`);
    assert.equal(kitEcho.headers['x-forwarded-host'], rawEcho.headers['x-forwarded-host'], `${what}: X-Forwarded-Host`);
    assert.equal(kitEcho.headers['x-hello'], rawEcho.headers['x-hello'], `${what}: the same route's plugins ran`);
  }

  async function assertSame(target: string, hosts?: string[], status?: number): Promise<InjectResponse> {
    const what = `${JSON.stringify(target)} with Host ${JSON.stringify(hosts ?? ['localhost:80'])}`;
    const { kit, raw } = await both(target, hosts);
    if (status !== undefined) assert.equal(raw.status, status, `${what}: the port's status (${raw.body})`);
    assertSameAnswer(kit, raw, what);
    return kit;
  }

  test('a canonical target: the same route, target and Host upstream (the control)', async () => {
    const kit = await assertSame('/m/rec?x=1', undefined, 200);
    assert.equal(kit.json<EchoedRequest>().url, '/m/rec?x=1');
    assert.equal(kit.json<EchoedRequest>().headers['x-hello'], 'world');
  });

  test('dot-segments, plain and percent-encoded in any case, are refused, never merged into another route', async () => {
    for (const target of ['/m/../m/rec', '/m/./rec', '/m/rec/..', '/m/rec/%2e%2e/x', '/m/rec/%2E%2E/x', '/m/rec/%2e%2E/x', '/m/rec/.%2e/x', '/m/%2e/rec']) {
      await assertSame(target, undefined, 400);
    }
  });

  test('encoded slashes and backslashes, raw backslashes and empty segments are refused', async () => {
    for (const target of ['/m%2Frec', '/m%2frec', '/m/rec%5Cx', '/m\\rec', '/m/rec\\..\\x', '//m/rec', '/m//rec']) {
      await assertSame(target, undefined, 400);
    }
  });

  test('absolute-form, authority-form, asterisk-form and a target without its leading slash are refused', async () => {
    for (const target of ['http://evil.example/m/rec', 'HTTP://evil.example/m/rec', 'http://localhost:80/m/rec', 'evil.example:80', '*', 'm/rec', '']) {
      await assertSame(target, undefined, 400);
    }
  });

  test('a fragment is refused, in the path or after a query', async () => {
    for (const target of ['/m/rec#frag', '/m/rec?q=1#frag', '/m/rec?#', '/m/rec#']) await assertSame(target, undefined, 400);
  });

  test('bytes no request line carries (space, tab, DEL, non-ASCII) get the port\'s "malformed HTTP request", connection closed', async () => {
    for (const target of ['/m/r ec', '/m/r\tec', '/m/r\x7fec', '/m/r\u00e9c', '/m/rec?q=a b']) {
      const { kit, raw } = await both(target);
      assertSameAnswer(kit, raw, JSON.stringify(target));
      assert.equal(kit.json<{ details: string }>().details, 'malformed HTTP request');
      assert.equal(kit.headers.connection, 'close');
    }
  });

  test('Host: empty reaches the upstream empty; missing, repeated, with userinfo or not canonical is refused', async () => {
    const empty = await assertSame('/m/rec', [''], 200);
    assert.equal(empty.json<EchoedRequest>().headers.host, '', 'the empty Host as sent, not localhost:80');
    await assertSame('/m/rec', [], 400);
    for (const hosts of [['a.example', 'b.example'], ['a.example', 'a.example'], ['user@evil.example'], ['evil.example:99999'], ['127.1'], ['[0:0::1]']]) {
      await assertSame('/m/rec', hosts, 400);
    }
    await assertSame('/m/rec', ['Evil.Example:8080'], 200);
  });

  test('headers reach the gateway as node parses them: repeated ones joined, values trimmed; a line break is no header', async () => {
    const echoed = (await gateway.inject({ url: '/m/rec', headers: { 'x-list': ['a', 'b'], 'x-pad': '  v  ' } })).json<EchoedRequest>();
    assert.equal(echoed.headers['x-list'], 'a, b');
    assert.equal(echoed.headers['x-pad'], 'v');
    await assert.rejects(gateway.inject({ url: '/m/rec', headers: { 'x-a': 'b\r\nHost: evil.example' } }), TypeError);
  });
});
