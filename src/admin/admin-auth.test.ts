// Unit tests of the admin guards: the loopback Host parser and the constant-time token check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAdminToken, isLoopbackAddress, isLoopbackHost } from './admin-auth.js';

test('loopback Host names: literals and localhost only, with an optional port', () => {
  for (const host of ['localhost', 'localhost:9090', 'localhost:65535', '127.0.0.1', '127.0.0.1:9090', '127.1.2.3', '[::1]', '[::1]:9090', '[0:0:0:0:0:0:0:1]:80', 'LOCALHOST']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of [
    '127.attacker.example',
    '127.0.0.1.attacker.example',
    '127.0.0.1.nip.io:9090',
    'localhost.attacker.example',
    'evil.localhost.example',
    '127.0.0.1:90a',
    'localhost:99999',
    '[::1]:65536',
    '127.0.0.1@evil.example',
    '[::1].evil',
    '[::2]',
    '10.0.0.1',
    '0x7f.0.0.1',
    '2130706433',
    '',
    undefined,
  ]) {
    assert.equal(isLoopbackHost(host), false, String(host));
  }
});

test('loopback addresses: 127/8, ::1 and IPv4-mapped 127/8', () => {
  assert.equal(isLoopbackAddress('127.0.0.1'), true);
  assert.equal(isLoopbackAddress('::1'), true);
  assert.equal(isLoopbackAddress('::ffff:127.0.0.1'), true);
  assert.equal(isLoopbackAddress('0.0.0.0'), false);
  assert.equal(isLoopbackAddress('::'), false);
  assert.equal(isLoopbackAddress('::ffff:10.0.0.1'), false);
  assert.equal(isLoopbackAddress('127.example'), false);
});

test('admin token: right, wrong, missing', () => {
  const req = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } });
  assert.equal(checkAdminToken(req('Bearer s3cret-token'), 's3cret-token'), 'ok');
  assert.equal(checkAdminToken(req('bearer s3cret-token'), 's3cret-token'), 'ok');
  assert.equal(checkAdminToken(req('Bearer s3cret-tokeN'), 's3cret-token'), 'wrong');
  assert.equal(checkAdminToken(req('Bearer s3cret'), 's3cret-token'), 'wrong');
  assert.equal(checkAdminToken(req('Bearer'), 's3cret-token'), 'wrong');
  assert.equal(checkAdminToken(req('Basic czNjcmV0'), 's3cret-token'), 'missing');
  assert.equal(checkAdminToken(req(), 's3cret-token'), 'missing');
});
