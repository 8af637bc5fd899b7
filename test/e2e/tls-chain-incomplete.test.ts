// A cert_file holding the server's certificate without the intermediate that issued it (cert.pem served for
// fullchain.pem) loaded in silence, and clients that do not hold the intermediate failed every handshake with
// "unable to get local issuer certificate". It is now warned of, at start-up and at each reload that loads it; a
// full chain, and a private CA's leaf (which names no CA Issuers location), draw nothing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { rewriteConfig, spawnGateway, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
after(() => pki.remove());

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: pki.path, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
// A root, an intermediate it signs, and a leaf the intermediate signs that names where its issuer is fetched from,
// as every certificate of a public CA does.
openssl('req', '-x509', ...EC, '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=Chain Test Root',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
writeFileSync(join(pki.path, 'ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
openssl('req', '-new', ...EC, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=Chain Test Intermediate R1/O=Chain Test');
openssl('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '2', '-extfile', 'ca.ext', '-out', 'int.pem');
writeFileSync(
  join(pki.path, 'leaf.ext'),
  'subjectAltName=DNS:a.test\nextendedKeyUsage=serverAuth\nauthorityInfoAccess=caIssuers;URI:http://ca.test/int.der\n',
);
openssl('req', '-new', ...EC, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=a.test');
openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-days', '2', '-extfile', 'leaf.ext', '-out', 'leaf.pem');
const file = (name: string) => join(pki.path, name);
writeFileSync(file('fullchain.pem'), Buffer.concat([readFileSync(file('leaf.pem')), readFileSync(file('int.pem'))]));
// The root pasted where the intermediate belongs: more than one certificate, still no issuer.
writeFileSync(file('leaf-root.pem'), Buffer.concat([readFileSync(file('leaf.pem')), readFileSync(file('root.pem'))]));
const root = readFileSync(file('root.pem'));

/** A client trusting only the root, as every client holds only roots: the handshake's verdict. */
function handshake(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', ca: root });
    socket.once('secureConnect', () => {
      resolve('ok');
      socket.end();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const config = (certFile: string, extra: ConfigInput = {}): ConfigInput => ({
  server: { tls: { cert_file: certFile, key_file: file('leaf.key'), ...extra } },
  load_balancing: { upstreams: upstreams([1]), health_check: { enabled: false } },
});
const warnings = (logs: ReadonlyArray<Record<string, unknown>>) => logs.filter((l) => l.msg === 'Certificate Chain Incomplete');

test('a leaf served without its intermediate is warned of at start-up and at reload, naming the missing issuer', async () => {
  const gw = await spawnGateway(config(file('leaf.pem')));
  try {
    // What the warning is about: a client holding only the root cannot verify the server.
    assert.equal(await handshake(gw.port), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const [warning, ...more] = warnings(gw.logs);
    assert.equal(more.length, 0);
    assert.equal(warning?.level, 40);
    assert.equal(warning?.cert_file, file('leaf.pem'));
    assert.equal(warning?.missing_issuer, 'CN=Chain Test Intermediate R1, O=Chain Test');
    // A reload that still loads it warns again; one that installs the full chain does not, and clients verify.
    gw.signal('SIGHUP');
    await waitFor(() => warnings(gw.logs).length === 2, 'the warning again at reload', 10_000);
    rewriteConfig(gw, config(file('fullchain.pem')));
    const before = gw.logs.length;
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.slice(before).some((l) => l.msg === 'Certificates Reloaded'), 'Certificates Reloaded', 10_000);
    assert.equal(await handshake(gw.port), 'ok');
    assert.equal(warnings(gw.logs).length, 2);
  } finally {
    await gw.cleanup();
  }
});

test('a leaf followed by a certificate that did not issue it is warned of too', async () => {
  const gw = await spawnGateway(config(file('leaf-root.pem')));
  try {
    assert.equal(await handshake(gw.port), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const [warning, ...more] = warnings(gw.logs);
    assert.equal(more.length, 0);
    assert.equal(warning?.missing_issuer, 'CN=Chain Test Intermediate R1, O=Chain Test');
  } finally {
    await gw.cleanup();
  }
});

test('a full chain, and a leaf signed by a private root that names no CA Issuers location, draw no warning', async () => {
  // The intermediate's key signs a leaf directly, the way `openssl ca` issues from a private CA.
  writeFileSync(file('private.ext'), 'subjectAltName=DNS:a.test\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-days', '2', '-extfile', 'private.ext', '-out', 'private.pem');
  for (const certFile of [file('fullchain.pem'), file('private.pem')]) {
    const gw = await spawnGateway(config(certFile));
    try {
      assert.deepEqual(warnings(gw.logs), [], certFile);
    } finally {
      await gw.cleanup();
    }
  }
});
