// Review fixes on the TLS side.
// - The TLS handshake bound (server.timeouts.header) follows a reload. It was node's handshakeTimeout, read once by
//   the server's constructor: a reload shortening or lengthening timeouts.header left handshakes on the start-up
//   bound, over HTTP/1.1-only TLS and HTTP/2 alike.
// - An IP literal in a service's tls.servername is never sent as SNI (RFC 6066 §3; node printed DEP0123), and the
//   upstream's certificate is still verified against that IP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { aTestCertificateHooks, createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** Opens a TCP connection to `port` and sends nothing: resolves with what the server wrote and when it closed. */
async function silentTcp(port: number): Promise<{ closedAfterMs(): number | undefined; bytes(): number; closed: Promise<number> }> {
  const started = Date.now();
  const socket = await openSocket(port);
  let received = 0;
  let closedAt: number | undefined;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now() - started;
      resolve(closedAt);
    }),
  );
  // Never left behind by a failing test.
  setTimeout(() => socket.destroy(), 30_000).unref();
  return { closedAfterMs: () => closedAt, bytes: () => received, closed };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `promise`'s value, or undefined once `ms` have passed; the timer is cleared when the promise wins (a 12.5 s race
 * left pending kept the file's process alive after its last test).
 */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

// Its six tests run at once (each on its own gateway, idle sockets and timers): one after another they took 22 s.
describe('TLS handshake bound: server.timeouts.header as a reload leaves it', { concurrency: true }, () => {
  const pkiCert = aTestCertificateHooks('Handshake CA');
  const { gateways } = pkiCert;

  // Complete (the test helper's defaults spelled out), so a reload reads the very same config but for the timeouts.
  const config = (http2: boolean, header: string, idle = '5s'): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: 0, tls: { cert_file: pkiCert.certFile, key_file: pkiCert.keyFile, http2 }, timeouts: { header, idle } },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
  });

  async function start(input: ConfigInput): Promise<InProcessGateway> {
    const gw = await startInProcess(input);
    gateways.push(gw);
    return gw;
  }

  const reload = (gw: InProcessGateway, input: ConfigInput) => gw.gateway.reload(parseConfigObject(input));

  for (const http2 of [true, false]) {
    const label = http2 ? 'h2 + HTTP/1.1' : 'HTTP/1.1 only';

    test(`${label}: a reload shortening timeouts.header shortens the handshake bound`, async () => {
      const gw = await start(config(http2, '8s'));
      await reload(gw, config(http2, '1s'));
      const conn = await silentTcp(gw.gateway.port);
      // Before the fix: the start-up 8 s. Now 1 s; 3 s is generous on a loaded machine.
      const closedAfter = await within(conn.closed, 3_000);
      assert.notEqual(closedAfter, undefined, 'a silent TLS connection outlived 3× the reloaded 1 s bound');
      assert.equal(conn.bytes(), 0, 'no HTTP answer before a handshake');
      const errors = gw.logs.filter((l) => typeof l.level === 'number' && l.level >= 40);
      assert.deepEqual(errors, [], 'a handshake timeout writes no warning or error line');
    });

    test(`${label}: a reload lengthening timeouts.header lengthens it`, async () => {
      const gw = await start(config(http2, '1s'));
      const before = await silentTcp(gw.gateway.port);
      const beforeClosed = await within(before.closed, 3_000);
      assert.notEqual(beforeClosed, undefined, 'the start-up 1 s bound holds');
      await reload(gw, config(http2, '5s'));
      const conn = await silentTcp(gw.gateway.port);
      await delay(2_500);
      // Before the fix: closed after the start-up 1 s.
      assert.equal(conn.closedAfterMs(), undefined, 'closed at 2.5× the old bound although the reloaded one is 5 s');
      const closedAfter = await within(conn.closed, 12_500);
      assert.notEqual(closedAfter, undefined, 'still open at 3× the reloaded 5 s bound');
      assert.ok(closedAfter! >= 4_000, `closed after ${closedAfter} ms, before the 5 s bound`);
    });

    test(`${label}: a finished handshake is not cut by the bound`, async () => {
      const gw = await start(config(http2, '1s', '20s'));
      const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, ca: pkiCert.ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
      let data = '';
      let closed = false;
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.on('close', () => (closed = true));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      const get = 'GET /health HTTP/1.1\r\nHost: a.test\r\n\r\n';
      socket.write(get);
      await delay(2_500);
      assert.equal(closed, false, 'an established connection was closed at the handshake bound');
      socket.write(get);
      await delay(1_000);
      socket.destroy();
      assert.equal(data.match(/HTTP\/1\.1 200 /g)?.length, 2, data);
    });
  }
});

describe('upstream tls.servername: an IP literal is never sent as SNI', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let upstream: HttpsServer;
  let port: number;
  const sni: Array<string | false> = [];
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);

  before(async () => {
    ca = createTestCa('Upstream CA', pki.path);
    // Issued for the IP only: a name sent as SNI or checked against would not match it.
    const cert = ca.issue('ip-only', { san: ['IP:127.0.0.1'] });
    upstream = createHttpsServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (_req, res) => res.end('ok'));
    upstream.on('secureConnection', (socket: TLSSocket) => sni.push(socket.servername as string | false));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    port = (upstream.address() as AddressInfo).port;
    process.on('warning', onWarning);
  });

  after(() => {
    process.off('warning', onWarning);
    upstream.close();
    pki.remove();
  });

  async function statusThrough(address: string, servername: string): Promise<number> {
    const gw = await startInProcess({
      load_balancing: { upstreams: [{ name: 'u', address, port }], tls: { enabled: true, ca_file: ca.caFile, servername } },
    });
    try {
      return await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: gw.gateway.port, path: '/' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    } finally {
      await gw.close();
    }
  }

  test('servername 127.0.0.1: no SNI, no DEP0123, the certificate verified against the IP', async () => {
    sni.length = 0;
    assert.equal(await statusThrough('127.0.0.1', '127.0.0.1'), 200);
    assert.ok(sni.length > 0);
    assert.deepEqual([...new Set(sni)], [false], 'SNI sent to the upstream');
    assert.deepEqual(warnings.filter((w) => /RFC 6066|ServerName/i.test(w)), []);
  });

  test('servername 127.0.0.1 with a name as the address: no SNI (not the name either), verified against the IP', async () => {
    sni.length = 0;
    assert.equal(await statusThrough('localhost', '127.0.0.1'), 200);
    assert.deepEqual([...new Set(sni)], [false], 'SNI sent to the upstream');
  });

  test('servername an IP the certificate does not name: still refused (verification kept)', async () => {
    sni.length = 0;
    assert.equal(await statusThrough('127.0.0.1', '127.0.0.2'), 502);
    assert.ok(sni.every((name) => name === false), `SNI sent: ${JSON.stringify(sni)}`);
  });
});
