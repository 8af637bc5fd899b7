// Review fixes on the HTTP→HTTPS redirect listener (server.http_redirect).
// - A head never finished was held for node's 30 s check interval although timeouts.header was shorter, then the
//   socket was destroyed without a word. Now it gets the proxy port's 408 within timeouts.header (plus a quarter of
//   it, the check interval), and a head node's parser refuses gets the proxy port's 400.
// - A reload never reached the listener's timeouts (header, idle): they stayed the start-up ones.
// - An absolute-form target (`GET http://evil.test/x`) or `OPTIONS *` was redirected to https://<Host>/, which the
//   https listener refuses: now refused with the https listener's 400 (path-check.ts), as the Host already was.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead } from '../helpers/raw.js';
import { aTestCertificateHooks } from '../helpers/tls.js';

interface Held {
  /** Milliseconds from connect to close, once closed. */
  readonly closedAfterMs: () => number | undefined;
  readonly data: () => string;
  /** Resolves with the milliseconds to the close, or undefined if still open after `ms`. */
  closedWithin(ms: number): Promise<number | undefined>;
}

/** Connects to `port`, writes `text` and keeps the connection open, reading whatever comes. */
async function hold(port: number, text: string): Promise<Held> {
  const started = Date.now();
  const socket = await openSocket(port);
  let data = '';
  let closedAt: number | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (data += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now() - started;
      resolve(closedAt);
    }),
  );
  setTimeout(() => socket.destroy(), 40_000).unref();
  socket.write(text);
  return {
    closedAfterMs: () => closedAt,
    data: () => data,
    closedWithin: (ms) => Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms))]),
  };
}

/** The head and JSON body of the one answer in `data`. */
function answer(data: string): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
  const split = data.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no answer: ${JSON.stringify(data)}`);
  const { status, headers } = parseHead(data.slice(0, split));
  return { status, headers, body: JSON.parse(data.slice(split + 4)) as Record<string, unknown> };
}

/** Writes `request` and reads one content-length framed answer. */
function exchange(socket: Socket, request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer: ${JSON.stringify(data)}`));
    }, 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const split = data.indexOf('\r\n\r\n');
      if (split === -1) return;
      const { status, headers } = parseHead(data.slice(0, split));
      if (data.length - split - 4 < Number(headers['content-length'] ?? 0)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, headers, body: data.slice(split + 4) });
    });
    socket.once('error', reject);
    socket.write(request);
  });
}

describe('redirect listener: timeouts, parser refusals, request targets', () => {
  const pkiCert = aTestCertificateHooks('Redirect review CA');
  const { gateways } = pkiCert;

  // Complete (the test helper's defaults spelled out), so a reload reads the same config but for the timeouts.
  const config = (header: string, idle: string): ConfigInput => ({
    server: {
      listen_host: '127.0.0.1',
      listen_port: 0,
      tls: { cert_file: pkiCert.certFile, key_file: pkiCert.keyFile },
      http_redirect: { listen_port: 0 },
      timeouts: { header, idle },
    },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    // Nothing listens on port 9: no request here may reach a route.
    load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
  });

  async function start(header: string, idle: string): Promise<{ gw: InProcessGateway; redirectPort: number }> {
    const gw = await startInProcess(config(header, idle));
    gateways.push(gw);
    return { gw, redirectPort: gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number };
  }

  test('a head not finished within timeouts.header gets the 408 the proxy port gives, then the close', async () => {
    const { redirectPort } = await start('1s', '5s');
    const conn = await hold(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\n');
    // 1 s, checked every 250 ms; before the fix node's 30 s check closed it, with nothing written. 4 s is generous.
    const closedAfter = await conn.closedWithin(4_000);
    assert.notEqual(closedAfter, undefined, 'a stalled head outlived 4× timeouts.header');
    const { status, headers, body } = answer(conn.data());
    assert.equal(status, 408);
    assert.equal(headers['x-proxy-by'], 'Portcullis');
    assert.equal(headers.connection, 'close');
    assert.equal(headers['strict-transport-security'], undefined, 'never HSTS over cleartext');
    assert.equal(body.code, 'request_timeout');
  });

  test('a head node\'s parser refuses gets the proxy port\'s 400, not a silent close', async () => {
    const { redirectPort } = await start('5s', '5s');
    const conn = await hold(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\nBad Header: x\r\n\r\n');
    assert.notEqual(await conn.closedWithin(5_000), undefined);
    const { status, body } = answer(conn.data());
    assert.equal(status, 400);
    assert.equal(body.code, 'bad_request');
    assert.equal(body.details, 'malformed HTTP request');
  });

  test('a reload reaches its header and idle timeouts', async () => {
    const { gw, redirectPort } = await start('6s', '6s');
    await gw.gateway.reload(parseConfigObject(config('1s', '1s')));
    // The check interval stays the start-up one (1.5 s, a quarter of 6 s): 1 s + 1.5 s at most, 5 s is generous.
    // Before the fix: 6 s at least.
    const stalled = await hold(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\n');
    const stalledAfter = await stalled.closedWithin(5_000);
    assert.notEqual(stalledAfter, undefined, 'a stalled head outlived the start-up bound after a reload to 1 s');
    assert.equal(answer(stalled.data()).status, 408);
    // Keep-alive: idle 1 s after the 308 (before the fix: the start-up 6 s).
    const idle = await hold(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
    const idleAfter = await idle.closedWithin(4_000);
    assert.match(idle.data(), /^HTTP\/1\.1 308 /);
    assert.notEqual(idleAfter, undefined, 'an idle keep-alive connection outlived 4× the reloaded timeouts.idle');
  });

  test('a reload lengthening timeouts.header: a head is not cut at the old bound', async () => {
    const { gw, redirectPort } = await start('1s', '5s');
    await gw.gateway.reload(parseConfigObject(config('6s', '5s')));
    const conn = await hold(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\n');
    // The old 1 s bound, checked every 250 ms, closed it by about 1.25 s; 3 s is well past that.
    assert.equal(await conn.closedWithin(3_000), undefined, 'closed at the start-up bound after a reload to 6 s');
    assert.equal(conn.data(), '');
  });

  describe('request targets the https listener refuses are refused alike, never redirected', () => {
    let gw: InProcessGateway;
    let redirectPort: number;

    before(async () => {
      ({ gw, redirectPort } = await start('5s', '5s'));
    });

    const toProxy = (request: string) =>
      new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, ca: pkiCert.ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
        socket.once('secureConnect', () => exchange(socket, request).then(resolve, reject));
        socket.once('error', reject);
      });

    const cases: Array<[string, string, string]> = [
      ['absolute-form, another host', 'GET http://evil.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n', 'request target not canonical: request target must be origin-form (/path?query)'],
      ['absolute-form, the same host', 'GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n', 'request target not canonical: request target must be origin-form (/path?query)'],
      ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n', 'request target not canonical: asterisk-form (*) target'],
      ['an empty segment', 'GET //evil.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n', 'request target not canonical: empty path segment (//)'],
    ];
    for (const [label, request, details] of cases) {
      test(label, async () => {
        const redirect = await exchange(await openSocket(redirectPort), request);
        const proxy = await toProxy(request);
        for (const [name, got] of [['redirect', redirect], ['proxy', proxy]] as const) {
          assert.equal(got.status, 400, name);
          assert.equal(got.headers.location, undefined, name);
          assert.equal(got.headers['x-proxy-by'], 'Portcullis', name);
          const body = JSON.parse(got.body) as Record<string, unknown>;
          assert.equal(body.code, 'bad_request', name);
          assert.equal(body.details, details, name);
        }
      });
    }

    test('an origin-form target is still redirected', async () => {
      const got = await exchange(await openSocket(redirectPort), 'GET /a/b?c=1 HTTP/1.1\r\nHost: a.test\r\n\r\n');
      assert.equal(got.status, 308);
      assert.equal(got.headers.location, `https://a.test:${gw.gateway.port}/a/b?c=1`);
    });
  });
});
