// server.http_redirect without server.tls would send every client to https on a port that speaks plain HTTP: check-config
// and start refuse it, and so does a reload that turns TLS off while keeping the redirect.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { runCli, spawnGateway, writeConfig, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir, type IssuedCertificate } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const NEEDS_TLS = 'server.http_redirect: needs server.tls.cert_file and key_file (it redirects to https on server.listen_port)';
const LB = { upstreams: [{ name: 'a', address: '127.0.0.1', port: 9 }] };
const pki = pkiDir();
const client = createClient();
let cert: IssuedCertificate;

before(() => {
  cert = createTestCa('Redirect Config CA', pki.path).issue('redirect.test', { san: ['DNS:redirect.test', 'IP:127.0.0.1'] });
});
after(async () => {
  await client.close();
  pki.remove();
});

const withRedirect = (server: ConfigInput): ConfigInput => ({ server: { ...server, http_redirect: { listen_port: 0 } }, load_balancing: LB });

test('check-config and start refuse http_redirect without server.tls, with one line naming the key', async () => {
  // check-config first: were the config accepted, `start` would serve (and never exit) rather than fail.
  for (const command of ['check-config', 'start']) {
    const result = await runCli([command, '--config', writeConfig(withRedirect({}))]);
    assert.equal(result.code, 1, result.stdout);
    assert.equal(result.stderr, `portcullis: config error: ${NEEDS_TLS}\n`, command);
  }
  const withTls = await runCli(['check-config', '--config', writeConfig(withRedirect({ tls: { cert_file: cert.certFile, key_file: cert.keyFile } }))]);
  assert.equal(withTls.code, 0, withTls.stderr);
});

test('the shipped configs still pass check-config', async () => {
  for (const file of ['config/proxy.yaml', 'config/demo.yaml']) {
    const result = await runCli(['check-config', '--config', file]);
    assert.equal(result.code, 0, `${file}: ${result.stderr}`);
  }
});

test('a reload that turns TLS off but keeps http_redirect is refused with the same reason, the running config kept', async () => {
  const tls = { cert_file: cert.certFile, key_file: cert.keyFile };
  const gw = await spawnGateway(withRedirect({ tls }));
  after(() => gw.cleanup());
  copyFileSync(writeConfig(withRedirect({})), gw.configFile);
  const res = await client.request(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
  assert.equal(res.status, 400);
  assert.deepEqual(res.json(), { status: 'rejected', reason: NEEDS_TLS });
  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.filter((l) => l.msg === 'Config Rejected').length === 2, '"Config Rejected" after SIGHUP', 10_000);
  assert.ok(gw.logs.filter((l) => l.msg === 'Config Rejected').every((l) => l.reason === NEEDS_TLS));
  assert.equal(gw.logs.filter((l) => l.msg === 'Config Reloaded').length, 0);
});
