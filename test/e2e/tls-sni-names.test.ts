// SNI is read as routing reads the Host: case and one trailing dot make no difference, so the certificate a client
// gets and the route its request takes name the same host (`openssl s_client -servername api.example.com.` got the
// default certificate while `Host: api.example.com.` took the api.example.com route).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/**
 * One TLS connection with SNI `servername` (verified against `ca` for that name, as a browser would), then
 * `GET /echo` with `Host: servername` on it: the certificate's CN and which backend answered.
 */
function getOver(port: number, ca: Buffer, servername: string): Promise<{ cn: string; backend: string; status: number }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ca, servername, ALPNProtocols: ['http/1.1'] });
    let cn = '';
    let data = '';
    socket.setEncoding('utf8');
    socket.once('secureConnect', () => {
      cn = String(socket.getPeerCertificate().subject.CN);
      socket.write(`GET /echo HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: string) => (data += d));
    socket.once('error', reject);
    socket.once('close', () => {
      const split = data.indexOf('\r\n\r\n');
      if (split === -1) {
        reject(new Error(`no response over SNI ${servername} (certificate ${cn})`));
        return;
      }
      const status = Number(data.slice(9, 12));
      const body = data.slice(split + 4);
      resolve({ cn, status, backend: status === 200 ? (JSON.parse(body) as EchoBody).backend : `status ${status}` });
    });
  });
}

/** `openssl s_client -servername NAME`: the subject line of the certificate the server sent. */
function opensslSubject(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-brief', '-no_ign_eof'],
      { timeout: 10_000 },
      (err, _stdout, stderr) => {
        const subject = /Peer certificate: (.*)/.exec(stderr);
        if (subject) resolve(subject[1]!);
        else reject(err ?? new Error(`no peer certificate in: ${stderr}`));
      },
    );
    child.stdin!.end();
  });
}

describe('SNI names as the Host is read', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let api: TestBackend;
  let www: TestBackend;
  let other: TestBackend;
  let gw: InProcessGateway;

  before(async () => {
    ca = createTestCa('SNI CA', pki.path);
    const fallback = ca.issue('default.test', { san: ['DNS:default.test', 'IP:127.0.0.1'] });
    const wildcard = ca.issue('wildcard.example.com', { san: ['DNS:*.example.com'] });
    const exact = ca.issue('api.example.com');
    [api, www, other] = await Promise.all([startBackend('api'), startBackend('www'), startBackend('other')]);
    const svc = (b: TestBackend) => ({ upstreams: [{ name: b.name, address: '127.0.0.1', port: b.port }], health_check: { enabled: false } });
    gw = await startInProcess({
      server: {
        tls: {
          cert_file: fallback.certFile,
          key_file: fallback.keyFile,
          // The wildcard before the exact name: the exact one must still win.
          certificates: [
            { cert_file: wildcard.certFile, key_file: wildcard.keyFile },
            { cert_file: exact.certFile, key_file: exact.keyFile },
          ],
        },
      },
      services: { api: svc(api), www: svc(www), other: svc(other) },
      routes: [
        { name: 'api', match: { hosts: ['api.example.com'] }, service: 'api' },
        { name: 'www', match: { hosts: ['*.example.com'] }, service: 'www' },
        { name: 'rest', match: { path_prefix: '/' }, service: 'other' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([api?.stop(), www?.stop(), other?.stop()]);
    pki.remove();
  });

  test('the exact certificate and the exact route, whatever the case, with or without the trailing dot', async () => {
    for (const name of ['api.example.com', 'api.example.com.', 'API.EXAMPLE.COM', 'API.Example.Com.']) {
      assert.deepEqual(await getOver(gw.gateway.port, ca.ca, name), { cn: 'api.example.com', status: 200, backend: 'api' }, name);
    }
  });

  test('the wildcard certificate and the wildcard route for one more label, trailing dot or not', async () => {
    for (const name of ['www.example.com', 'www.example.com.', 'WWW.EXAMPLE.COM.', 'Shop.Example.Com.']) {
      assert.deepEqual(await getOver(gw.gateway.port, ca.ca, name), { cn: 'wildcard.example.com', status: 200, backend: 'www' }, name);
    }
  });

  test('the default certificate for a name no certificate covers, trailing dot or not', async () => {
    for (const name of ['default.test', 'DEFAULT.TEST.']) {
      assert.deepEqual(await getOver(gw.gateway.port, ca.ca, name), { cn: 'default.test', status: 200, backend: 'other' }, name);
    }
  });

  test('openssl s_client -servername api.example.com. gets the api.example.com certificate', async () => {
    assert.match(await opensslSubject(gw.gateway.port, 'api.example.com.'), /CN ?= ?api\.example\.com\b/);
    assert.match(await opensslSubject(gw.gateway.port, 'x.example.com.'), /CN ?= ?wildcard\.example\.com\b/);
  });
});
