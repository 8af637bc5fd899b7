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
  assert.equal(addressBucketKey('::1', 128), '::1');
  assert.equal(addressBucketKey('192.0.2.7', 64), '192.0.2.7');
  assert.equal(addressBucketKey('not:an:address:at:all', 64), 'not:an:address:at:all');
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8:9'), undefined);
  assert.equal(parseIPv6('1::2::3'), undefined);
  assert.deepEqual(parseIPv6('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
});

test('an IPv6 spelling of an IPv4 client is keyed as that IPv4 address, so IPv4 clients never share a bucket', () => {
  // Before: all of these fell into 0:0:0:0::/64 (or 64:ff9b:0:0::/64), one bucket for every IPv4 client.
  const spellings = (a: number, dotted: string) => [
    dotted,
    `::ffff:${dotted}`,
    `::FFFF:${dotted}`,
    `::ffff:a00:${a.toString(16)}`,
    `0:0:0:0:0:ffff:${dotted}`,
    `::ffff:0:${dotted}`,
    `64:ff9b::${dotted}`,
    `64:FF9B::A00:${a.toString(16)}`,
  ];
  const keys = new Set<string>();
  for (const a of [2, 3, 4, 5]) {
    for (const prefix of [48, 64, 128]) {
      for (const spelling of spellings(a, `10.0.0.${a}`)) assert.equal(addressBucketKey(spelling, prefix), `10.0.0.${a}`, spelling);
    }
    keys.add(addressBucketKey(`::ffff:10.0.0.${a}`, 64));
  }
  assert.equal(keys.size, 4);
});

test('at prefix 128 the key is the address, not its text: every spelling is one key', () => {
  for (const spelling of ['2001:db8::1', '2001:DB8::1', '2001:db8:0:0::1', '2001:0db8::0001', '2001:db8::1%1', '2001:db8:0:0:0:0:0:1']) {
    assert.equal(addressBucketKey(spelling, 128), '2001:db8::1', spelling);
  }
  assert.equal(addressBucketKey('2001:db8::2', 128), '2001:db8::2');
});
