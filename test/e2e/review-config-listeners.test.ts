// Two listeners of one config on the same port: check-config said "config ok", and start failed with a bare
// EADDRINUSE. Now check-config (and start, before binding anything) names the keys.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';
import { createTestCa } from '../helpers/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-config-listeners-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
async function checkConfig(text: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(dir, `proxy-${files++}.yaml`);
  writeFileSync(file, `${text}load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`);
  return runCli(['check-config', '--config', file]);
}

test('the admin listener on the proxy port is a config error naming both keys', async () => {
  for (const [server, admin] of [
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'],
    ['::', 'localhost'],
  ]) {
    const result = await checkConfig(`server: {listen_host: "${server}", listen_port: 18181}\nadmin: {listen_host: "${admin}", listen_port: 18181}\n`);
    assert.equal(
      result.stderr,
      'portcullis: config error: admin.listen_port: the same port as server.listen_port, on addresses that overlap (both listeners cannot bind it)\n',
      `${server} ${admin}`,
    );
    assert.equal(result.code, 1);
  }
  // Distinct addresses, port 0 (each picks a free one), or the admin listener off: fine.
  for (const text of [
    'server: {listen_host: 127.0.0.2, listen_port: 18181}\nadmin: {listen_host: 127.0.0.1, listen_port: 18181}\n',
    'server: {listen_port: 0}\nadmin: {listen_port: 0}\n',
    'server: {listen_port: 18181}\nadmin: {enabled: false, listen_port: 18181}\n',
  ]) {
    const result = await checkConfig(text);
    assert.equal(result.stderr, '', text);
    assert.equal(result.code, 0, text);
  }
});

test('the redirect listener on the proxy port (or the admin one) is a config error', async () => {
  const { certFile, keyFile } = createTestCa('Listeners Test CA', dir).issue('localhost');
  const tls = `tls: {cert_file: "${certFile}", key_file: "${keyFile}"}`;
  const proxy = await checkConfig(`server: {listen_port: 18443, ${tls}, http_redirect: {listen_port: 18443}}\nadmin: {enabled: false}\n`);
  assert.equal(proxy.stderr, 'portcullis: config error: server.http_redirect.listen_port: the same port as server.listen_port, on addresses that overlap (both listeners cannot bind it)\n');
  const admin = await checkConfig(`server: {listen_port: 18443, ${tls}, http_redirect: {listen_port: 18080}}\nadmin: {listen_port: 18080}\n`);
  assert.equal(
    admin.stderr,
    'portcullis: config error: admin.listen_port: the same port as server.http_redirect.listen_port, on addresses that overlap (both listeners cannot bind it)\n',
  );
});

/** The admin listener off loopback needs a token. */
const token = (key: string) => (key === 'admin' ? ', token: 0123456789abcdef0123' : '');

test('a listen_host that is neither an IP address nor a host name is a config error, not ENOTFOUND at start', async () => {
  for (const key of ['server', 'admin'] as const) {
    for (const [host, why] of [
      ['[::1]', 'an IPv6 address is written without brackets here (::1)'],
      ['999.1.1.1', 'must be an IP address or a host name'],
      ['no such host.invalid', 'must be an IP address or a host name'],
    ]) {
      const result = await checkConfig(`${key}: {listen_host: "${host}", listen_port: 0${token(key)}}\n`);
      assert.equal(result.stderr, `portcullis: config error: ${key}.listen_host: ${why}\n`, `${key} ${host}`);
      assert.equal(result.code, 1);
    }
    for (const host of ['::1', '127.0.0.1', 'localhost', 'gateway-1.internal']) {
      const result = await checkConfig(`${key}: {listen_host: "${host}", listen_port: 0${token(key)}}\n`);
      assert.equal(result.stderr, '', `${key} ${host}`);
      assert.equal(result.code, 0);
    }
  }
});
