// addressBucketKey: IPv6 clients share one bucket per /64 (or the configured prefix); IPv4 is untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressBucketKey, parseIPv6 } from './address-key.js';

test('every address of one /64 gives the same key, in any spelling', () => {
  const key = addressBucketKey('2001:db8:1:2::1', 64);
  assert.equal(key, '2001:db8:1:2::/64');
  for (const spelling of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2:a:b:c:d%eth0', '2001:db8:1:2::1.2.3.4']) {
    assert.equal(addressBucketKey(spelling, 64), key, spelling);
  }
  assert.notEqual(addressBucketKey('2001:db8:1:3::1', 64), key, 'the next /64 is another client');
});

test('other prefix lengths, IPv4, and input that is not an address', () => {
  assert.equal(addressBucketKey('2001:db8:1:2::1', 48), '2001:db8:1::/48');
  assert.equal(addressBucketKey('2001:db8:1:2::1', 56), '2001:db8:1:0::/56');
  assert.equal(addressBucketKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200::/56');
  assert.equal(addressBucketKey('2001:db8::1', 128), '2001:db8::1');
  assert.equal(addressBucketKey('::1', 64), '0:0:0:0::/64');
  assert.equal(addressBucketKey('192.0.2.7', 64), '192.0.2.7');
  assert.equal(addressBucketKey('not:an:address:at:all', 64), 'not:an:address:at:all');
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8:9'), undefined);
  assert.equal(parseIPv6('1::2::3'), undefined);
  assert.deepEqual(parseIPv6('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
});
