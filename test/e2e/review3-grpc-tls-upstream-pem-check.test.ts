// HTTPS upstreams: TLS files whose content cannot work are refused up front, as the listener's certificates are.
// What was wrong: the upstream CA and client-certificate files were only read, never checked. A CA file holding no
// certificate (garbage, empty, a key pasted in its place) started, passed check-config and reloaded, then every
// request was a 502 upstream_tls logged "unknown CA"; a client key that does not match its certificate, or a
// certificate file that is none, made every request a 502 proxy_error with no line saying why. A FIFO named as
// ca_file blocked the event loop for good (readFileSync waits for a writer). Now each is a one-line config error
// naming the key and the file, at start-up and on reload (the reload changes nothing: the pools keep the files that
// worked, which matters now that a reload applies files rewritten in place).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
const client = createClient();
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await client.close();
  pki.remove();
});

const ca = createTestCa('PEM check CA', pki.path);
const serverCert = ca.issue('127.0.0.1', { san: ['IP:127.0.0.1'] });
const clientCert = ca.issue('gateway', { stem: 'client' });
const otherCert = ca.issue('other', { stem: 'other' });
const garbage = join(pki.path, 'garbage.pem');
writeFileSync(garbage, 'not a pem\n');
const empty = join(pki.path, 'empty.pem');
writeFileSync(empty, '');
const broken = join(pki.path, 'broken.pem');
writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nMIIBbroken\n-----END CERTIFICATE-----\n');
const fifo = join(pki.path, 'ca.fifo');
execFileSync('mkfifo', [fifo]);

async function httpsBackend(): Promise<number> {
  const server = createServer({ cert: serverCert.cert, key: serverCert.key }, (_req, res) => res.end('ok'));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return (server.address() as AddressInfo).port;
}

function config(port: number, tls: Record<string, string>): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port }], health_check: { enabled: false }, tls: { enabled: true, ...tls } },
  };
}

const REFUSED: Array<[string, Record<string, string>, RegExp]> = [
  ['a CA file that is no PEM', { ca_file: garbage }, /^load_balancing\.tls\.ca_file: .*garbage\.pem holds no PEM certificate$/],
  ['an empty CA file', { ca_file: empty }, /^load_balancing\.tls\.ca_file: .*empty\.pem holds no PEM certificate$/],
  ['a CA file whose certificate does not parse', { ca_file: broken }, /^load_balancing\.tls\.ca_file: .*broken\.pem holds a PEM certificate that does not parse$/],
  ['a FIFO as CA file', { ca_file: fifo }, /^load_balancing\.tls\.ca_file: cannot read .*ca\.fifo \(not a regular file\)$/],
  ['a client key of another certificate', { ca_file: ca.caFile, cert_file: clientCert.certFile, key_file: otherCert.keyFile }, /^load_balancing\.tls\.key_file: .*other\.key does not match the certificate in .*client\.pem$/],
  ['a client certificate file that is no certificate', { ca_file: ca.caFile, cert_file: garbage, key_file: clientCert.keyFile }, /^load_balancing\.tls\.cert_file: .*garbage\.pem is not a PEM certificate$/],
  ['a client key file that is no key', { ca_file: ca.caFile, cert_file: clientCert.certFile, key_file: garbage }, /^load_balancing\.tls\.key_file: .*garbage\.pem is not a PEM private key/],
];

for (const [title, tls, message] of REFUSED) {
  test(`${title} is refused at start-up`, async () => {
    const port = await httpsBackend();
    await assert.rejects(
      startInProcess(config(port, tls)).then((gw) => {
        closers.push(() => gw.close());
      }),
      (err: Error) => message.test(err.message),
    );
  });
}

test('a CA file rewritten with garbage: the reload is refused and requests keep working', async () => {
  const port = await httpsBackend();
  const caFile = join(pki.path, 'rotating-ca.pem');
  copyFileSync(ca.caFile, caFile);
  const gw = await startInProcess(config(port, { ca_file: caFile }));
  closers.push(() => gw.close());
  assert.equal((await client.request(`${gw.url}/x`)).status, 200);
  writeFileSync(caFile, 'half a rotation\n');
  await assert.rejects(gw.gateway.reload(parseConfigObject(config(port, { ca_file: caFile }))), /holds no PEM certificate/);
  // A new connection (the backend's keep-alive one may be reused otherwise): the pool still has the working CA.
  const res = await client.request(`${gw.url}/x`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200, res.text);
});
