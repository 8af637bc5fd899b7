// server.http_redirect sends clients to https on server.listen_port, so it is a config error without server.tls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './load.js';
import { configErrorOf as errorOf } from '../../test/helpers/config-error.js';

const UPSTREAMS = 'load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n';
const NEEDS_TLS = 'server.http_redirect: needs server.tls.cert_file and key_file (it redirects to https on server.listen_port)';

test('http_redirect.listen_port without server.tls is refused, naming the key', () => {
  assert.equal(errorOf(`${UPSTREAMS}server:\n  http_redirect:\n    listen_port: 8080\n`), NEEDS_TLS);
  // Empty cert and key files (config/proxy.yaml's "${TLS_CERT_FILE:-}" unset) are TLS off too.
  assert.equal(errorOf(`${UPSTREAMS}server:\n  listen_port: 8443\n  tls: {cert_file: "", key_file: "", hsts: "max-age=60"}\n  http_redirect: {listen_port: 8080}\n`), NEEDS_TLS);
});

test('http_redirect with server.tls, or with no listen_port, loads', () => {
  const tls = parseConfigText(`${UPSTREAMS}server:\n  listen_port: 8443\n  tls: {cert_file: c.pem, key_file: k.pem}\n  http_redirect: {listen_port: 8080}\n`, {});
  assert.equal(tls.server.http_redirect.listen_port, 8080);
  // No listen_port: no redirect listener, nothing to point at https.
  assert.equal(parseConfigText(`${UPSTREAMS}server:\n  http_redirect: {}\n`, {}).server.http_redirect.listen_port, undefined);
  assert.equal(parseConfigText(UPSTREAMS, {}).server.http_redirect.listen_port, undefined);
});

test('a half-set TLS pair is reported as such, not as the redirect', () => {
  assert.equal(
    errorOf(`${UPSTREAMS}server:\n  tls: {cert_file: c.pem}\n  http_redirect: {listen_port: 8080}\n`),
    'server.tls: cert_file and key_file must be set together',
  );
});
