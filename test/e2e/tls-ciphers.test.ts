// `server.tls.ciphers`: by default TLS 1.2 takes only ECDHE suites with an AEAD cipher (node's own default also took the
// CBC-SHA suites scanners flag as weak), on the default certificate and on every SNI one; a configured list narrows
// it, a reload applies it to the next handshake, and a list OpenSSL cannot use is a one-line config error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { rewriteConfig, runCli, spawnGateway, upstreams, writeConfig, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** A handshake as a client offering only `ciphers` (TLS 1.2 unless `tls13`): the suite agreed, or the error code. */
function handshake(port: number, ca: Buffer, servername: string, ciphers: string | undefined, tls13 = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername, ...(tls13 ? {} : { maxVersion: 'TLSv1.2' as const }), ...(ciphers === undefined ? {} : { ciphers }) });
    socket.once('secureConnect', () => {
      resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
      socket.end();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`refused ${err.code ?? err.message}`));
  });
}

/** The TLS 1.2 CBC-SHA suites an ECDSA certificate could use (what node's default list accepts). */
const CBC = ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384'];

describe('server.tls.ciphers', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let a: IssuedCertificate;
  let b: IssuedCertificate;
  let backend: TestBackend;
  before(async () => {
    ca = createTestCa('Ciphers CA', pki.path);
    a = ca.issue('a.test', { san: ['DNS:a.test'] });
    b = ca.issue('b.test', { san: ['DNS:b.test'] });
    backend = await startBackend('ciphers-backend');
  });
  after(async () => {
    await backend.stop();
    pki.remove();
  });
  const config = (tls: Record<string, unknown>): ConfigInput => ({
    server: { tls: { cert_file: a.certFile, key_file: a.keyFile, certificates: [{ cert_file: b.certFile, key_file: b.keyFile }], ...tls } },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });

  test('by default TLS 1.2 refuses every CBC suite and takes the AEAD ones, on the default and the SNI certificate', async () => {
    const gw = await spawnGateway(config({}));
    try {
      for (const name of ['a.test', 'b.test']) {
        for (const suite of CBC) assert.match(await handshake(gw.port, ca.ca, name, suite), /^refused /, `${name} ${suite}`);
        assert.equal(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-AES128-GCM-SHA256'), 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
        assert.equal(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-CHACHA20-POLY1305'), 'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305');
        // A client offering CBC first and GCM after gets GCM; TLS 1.3 is untouched.
        assert.equal(await handshake(gw.port, ca.ca, name, `${CBC.join(':')}:ECDHE-ECDSA-AES256-GCM-SHA384`), 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384');
        assert.match(await handshake(gw.port, ca.ca, name, undefined, true), /^TLSv1\.3 TLS_/);
      }
    } finally {
      await gw.cleanup();
    }
  });

  test('a configured list narrows TLS 1.2, and a reload applies a new one to the next handshake', async () => {
    const gw: GatewayProcess = await spawnGateway(config({ ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }));
    try {
      for (const name of ['a.test', 'b.test']) {
        assert.match(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-AES128-GCM-SHA256'), /^refused /);
        assert.equal(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-CHACHA20-POLY1305'), 'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305');
      }
      // A CBC suite can be named back in, for a client that has nothing else.
      rewriteConfig(gw, config({ ciphers: 'ECDHE-ECDSA-AES128-SHA' }));
      gw.signal('SIGHUP');
      await waitFor(() => gw.logs.some((l) => l.msg === 'Certificates Reloaded'), 'Certificates Reloaded', 10_000);
      for (const name of ['a.test', 'b.test']) {
        assert.match(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-CHACHA20-POLY1305'), /^refused /);
        assert.equal(await handshake(gw.port, ca.ca, name, 'ECDHE-ECDSA-AES128-SHA'), 'TLSv1.2 ECDHE-ECDSA-AES128-SHA');
      }
      // A list OpenSSL cannot use is refused by the reload, which changes nothing.
      const reloads = gw.logs.length;
      rewriteConfig(gw, config({ ciphers: 'NOT-A-CIPHER' }));
      gw.signal('SIGHUP');
      await waitFor(() => gw.logs.slice(reloads).some((l) => l.msg === 'Config Rejected' && String(l.reason).startsWith('server.tls.ciphers: ')), 'the refused reload', 10_000);
      assert.equal(await handshake(gw.port, ca.ca, 'b.test', 'ECDHE-ECDSA-AES128-SHA'), 'TLSv1.2 ECDHE-ECDSA-AES128-SHA');
    } finally {
      await gw.cleanup();
    }
  });

  test('check-config names the key of a list OpenSSL cannot use, and start refuses it the same way', async () => {
    for (const [ciphers, reason] of [
      ['NOT-A-CIPHER', 'server.tls.ciphers: names no cipher suite OpenSSL knows'],
      ['', 'server.tls.ciphers: must name at least one cipher suite'],
      ['  ', 'server.tls.ciphers: must name at least one cipher suite'],
    ] as const) {
      const file = writeConfig(config({ ciphers }));
      const checked = await runCli(['check-config', '--config', file], {}, { boundMs: 15_000 });
      assert.equal(checked.code, 1, `check-config ${JSON.stringify(ciphers)}`);
      assert.ok(checked.stderr.includes(reason), checked.stderr);
      const started = await runCli(['start', '--config', file], {}, { boundMs: 15_000 });
      assert.equal(started.code, 1, `start ${JSON.stringify(ciphers)}`);
      assert.ok(started.stderr.includes(reason), started.stderr);
    }
  });
});
